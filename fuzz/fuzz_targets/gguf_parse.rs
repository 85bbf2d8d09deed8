//! `Gguf::parse` on arbitrary bytes: an error or a header, never a panic, hang or huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wisp::gguf::Gguf::parse(data);
});
