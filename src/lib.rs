//! Wisp: run quantized GGUF language models on WebGPU, in the browser and natively.
//!
//! Layers, arrows pointing down only:
//! - [`model`]: configuration, tokenizer, forward passes;
//! - [`ops`]: GPU kernels (dequantize, matvec, matmul) with their CPU references;
//! - [`gpu`]: device, capability tiers, pipeline cache, buffers, readback;
//! - [`gguf`] and [`quant`]: the file format and the block formats, no GPU needed.

#[cfg(feature = "gpu")]
pub mod bench;
pub mod gguf;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod model;
#[cfg(feature = "gpu")]
pub mod ops;
pub mod quant;
#[cfg(all(feature = "gpu", target_arch = "wasm32"))]
pub mod web;
