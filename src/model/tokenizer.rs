//! Tokenizer built from the GGUF vocabulary (in progress).
