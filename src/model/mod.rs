//! Models: configuration from GGUF metadata, tokenizer, weights, one forward per architecture.

pub mod config;
pub mod tokenizer;
