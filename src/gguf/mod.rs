//! GGUF v2/v3 parser: from a memory map natively, or incrementally from byte chunks in the browser.
//!
//! - [`Gguf::parse`] reads a complete file (a memory map, or a download held in memory);
//! - [`StreamParser`] takes the file chunk by chunk as it downloads, buffers only the header
//!   and returns the [`Gguf`] as soon as the last tensor info has arrived;
//! - [`GgufFile`] (native only) memory-maps a file and hands out tensor data;
//! - [`GgufWriter`] builds files, for tests and random-weight models.
//!
//! # Robustness
//! Parsing never panics, hangs or allocates more than the input justifies: every malformed
//! input is a [`GgufError`]. Preallocation for a count read from the file is capped by the
//! bytes remaining; explicit limits ([`MAX_TENSORS`], [`MAX_KVS`], [`MAX_STRING_LEN`],
//! [`MAX_ARRAY_LEN`], [`MAX_NESTING`]) reject absurd values early, which also keeps a
//! streaming parser from waiting (and buffering) forever for bytes a lying length promised.
//!
//! # Rules beyond the format's bare syntax
//! - versions 2 and 3 only (v1 used 32-bit counts);
//! - tensors have 1 to 4 dimensions, each at least 1: llama.cpp tolerates a zero dimension,
//!   but an empty tensor has no use in a model and would need a zero-sized GPU buffer, so
//!   Wisp rejects it ([`GgufError::ZeroDim`]);
//! - a tensor's row length (`dims[0]`) is a whole number of blocks of its type, and the type
//!   id is one ggml defines ([`GgmlType::geometry`](crate::quant::GgmlType::geometry));
//! - offsets are multiples of `general.alignment` (default 32, a nonzero power of two),
//!   tensor names and metadata keys are unique, and tensor data ranges do not overlap;
//! - with the file length known, every tensor's data ends within the file. The file may end
//!   right after the last tensor's data (no trailing padding needed).

mod error;
mod header;
#[cfg(not(target_arch = "wasm32"))]
mod mmap;
mod parse;
mod stream;
mod tensor;
mod value;
mod writer;

pub use error::GgufError;
pub use header::Gguf;
#[cfg(not(target_arch = "wasm32"))]
pub use mmap::GgufFile;
pub use stream::{StreamParser, DEFAULT_MAX_HEADER_LEN};
pub use tensor::{TensorInfo, MAX_DIMS};
pub use value::{MetaArray, MetaValue, ValueType};
pub use writer::GgufWriter;

/// Most tensors a header may declare (2^24; large models have a few thousand).
pub const MAX_TENSORS: u64 = 1 << 24;
/// Most metadata entries a header may declare (2^24; models have tens).
pub const MAX_KVS: u64 = 1 << 24;
/// Longest string, in bytes (64 MiB; the longest real ones are chat templates of tens of KB).
pub const MAX_STRING_LEN: u64 = 1 << 26;
/// Most elements in one array (2^26; the largest vocabularies have a few hundred thousand).
pub const MAX_ARRAY_LEN: u64 = 1 << 26;
/// Deepest array nesting: 1 is an array of scalars, 2 an array of arrays, and so on.
pub const MAX_NESTING: u32 = 16;
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides [`DEFAULT_ALIGNMENT`].
pub const ALIGNMENT_KEY: &str = "general.alignment";
