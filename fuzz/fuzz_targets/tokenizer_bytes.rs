//! Encoding arbitrary text and decoding arbitrary ids with a real vocabulary: the default
//! model's (Gemma 3, 262k tokens, SentencePiece) and SmolLM2's (BPE) from the cache when they
//! are there, else a small SentencePiece vocabulary with byte fallback. decode(encode(s)) keeps
//! valid text; no input panics.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wisp::gguf::{Gguf, GgufFile, MetaArray, MetaValue};
use wisp::model::tokenizer::{Tokenizer, VocabKind};

fn tiny() -> Tokenizer {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "▁", "a", "b", "ab", "▁a"]
        .map(String::from)
        .to_vec();
    let mut scores = vec![0.0, 0.0, 0.0, -5.0, -6.0, -6.0, -1.0, -2.0];
    let mut types = vec![2, 3, 3, 1, 1, 1, 1, 1];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        scores.push(0.0);
        types.push(6);
    }
    let g = Gguf {
        version: 3,
        metadata: vec![
            ("tokenizer.ggml.model".into(), MetaValue::String("llama".into())),
            ("tokenizer.ggml.tokens".into(), MetaValue::Array(MetaArray::String(tokens))),
            ("tokenizer.ggml.scores".into(), MetaValue::Array(MetaArray::F32(scores))),
            ("tokenizer.ggml.token_type".into(), MetaValue::Array(MetaArray::I32(types))),
        ],
        tensors: vec![],
        alignment: 32,
        data_offset: 0,
    };
    Tokenizer::from_gguf(&g).expect("the tiny vocabulary builds")
}

fn tokenizers() -> &'static Vec<Tokenizer> {
    static T: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        let cache = std::env::var_os("WISP_CACHE")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/wisp")));
        let mut v = vec![tiny()];
        for name in ["gemma-3-270m-q4_k_m.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"] {
            if let Some(f) = cache.as_ref().and_then(|c| GgufFile::open(c.join(name)).ok()) {
                if let Ok(t) = Tokenizer::from_gguf(f.gguf()) {
                    v.push(t);
                }
            }
        }
        v
    })
}

fuzz_target!(
    init: {
        // Building Gemma's 262k-token vocabulary takes seconds with sanitizers: do it before
        // fuzzing, not inside the first input's time limit.
        tokenizers();
    },
    |data: &[u8]| {
    for t in tokenizers() {
        let text = String::from_utf8_lossy(data);
        if let Ok(ids) = t.encode(&text, false) {
            let back = t.decode(&ids).expect("decoding encoded ids");
            // Valid text without special-token texts round-trips (the space prefix aside).
            let spm = t.kind() == VocabKind::Spm;
            if spm && !text.contains('<') && !text.contains('\u{FFFD}') && !t.add_space_prefix() {
                assert_eq!(back, text, "decode(encode(s)) != s");
            }
        }
        let n = t.vocab_size() as u32;
        let ids: Vec<u32> = data
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % (n + 2))
            .collect();
        let _ = t.decode(&ids);
    }
});
