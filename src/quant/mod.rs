//! GGUF block formats: one struct per block with a size assert, and a plain CPU dequantize
//! that is the test oracle for the GPU kernels (bit-exact with gguf-py's `gguf.quants`).

pub mod types;

pub use types::{BlockGeometry, GgmlType};
