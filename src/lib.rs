//! Wisp: run quantized GGUF language models on WebGPU, in the browser and natively.
//!
//! Layers, arrows pointing down only:
//! - [`model`]: configuration, tokenizer, forward passes;
//! - [`ops`]: GPU kernels (dequantize, matvec, matmul) with their CPU references;
//! - [`gpu`]: device, capability tiers, pipeline cache, buffers, readback;
//! - [`gguf`] and [`quant`]: the file format and the block formats, no GPU needed.

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod gguf;
pub mod gpu;
pub mod model;
pub mod ops;
pub mod quant;
#[cfg(target_arch = "wasm32")]
pub mod web;
