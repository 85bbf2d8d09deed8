//! GPU ops, each with its Rust dispatch and its CPU reference.
