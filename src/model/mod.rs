//! Models: configuration from GGUF metadata, tokenizer, weights, one forward per architecture.

//! Without the `gpu` feature only the chat templates, the sampler and the tokenizer are here.

#[cfg(feature = "gpu")]
pub mod audit;
pub mod chat;
#[cfg(feature = "gpu")]
pub mod config;
#[cfg(feature = "gpu")]
pub mod draft;
#[cfg(feature = "gpu")]
pub mod forward;
#[cfg(feature = "gpu")]
pub mod generate;
#[cfg(feature = "gpu")]
pub mod grammar;
pub mod sampler;
#[cfg(feature = "gpu")]
pub mod session;
pub mod tokenizer;
#[cfg(feature = "gpu")]
pub mod weights;

use crate::gguf::GgufError;
#[cfg(feature = "gpu")]
use crate::gpu::GpuError;

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[cfg(feature = "gpu")]
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[cfg(feature = "gpu")]
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Tokenizer(#[from] tokenizer::TokenizerError),
    #[error(transparent)]
    Chat(#[from] chat::ChatError),
    #[error("the model has no tensor '{0}'")]
    MissingTensor(String),
    #[error("tensor '{tensor}' has shape {got}, expected {expected}")]
    Shape {
        tensor: String,
        expected: String,
        got: String,
    },
    #[error("tensor '{tensor}': {message}")]
    Tensor { tensor: String, message: String },
    #[error("token id {id} is outside the vocabulary of {n_vocab}")]
    BadToken { id: u32, n_vocab: u32 },
    #[error("context full: {needed} positions needed, the context holds {ctx}")]
    ContextFull { needed: u64, ctx: u32 },
    #[error("drafting (speculative decoding): {0}")]
    Draft(String),
    #[cfg(feature = "gpu")]
    #[error(transparent)]
    Constraint(#[from] generate::ConstraintError),
}
