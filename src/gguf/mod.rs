//! GGUF v2/v3 parser: from a memory map natively, or incrementally from byte chunks in the browser.
