//! GPU layer: device and capabilities, capability tiers, shader assembly, pipeline cache,
//! weight buffers (split over bindings when a tensor is larger than one binding), readback.
//!
//! Everything here is async and never blocks on the GPU, so the same code runs in the browser
//! (wasm32) and natively; native callers drive futures with `pollster`.

mod buffer;
mod device;
mod encoder;
mod error;
mod pipeline;
mod shader;

pub use buffer::{
    weight_texture, GpuWeight, WeightChunk, WeightStore, WeightWriter, ROWS8, TEX_WIDTH,
};
pub use device::{weight_store, AdapterSummary, Capabilities, Gpu, GpuOptions, KernelFamily, Tier};
pub use encoder::{Binding, Encoder, GpuCounts, Resource};
pub use error::GpuError;
pub use pipeline::{Bind, Kernel, KernelSpec, Op, PipelineKey};
pub use shader::{kernels_hash, no_weight_loads, preprocess, shader_source, unroll};
