//! The tokenizer built from arbitrary GGUF metadata: random vocabularies (SentencePiece or BPE),
//! merges, scores, token types and special ids. Building gives a tokenizer or an error naming
//! the key; a built tokenizer encodes and decodes text without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp::gguf::{Gguf, MetaArray, MetaValue};
use wisp::model::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, body) = data.split_at(4);
    // Body: tokens separated by 0xFF; a 0xFE splits the vocabulary from the text to encode.
    let (vocab, text) = match body.iter().position(|&b| b == 0xFE) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &b"hello world"[..]),
    };
    let tokens: Vec<String> = vocab
        .split(|&b| b == 0xFF)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .take(4096)
        .collect();
    let n = tokens.len();
    let bpe = head[0] & 1 == 1;
    let scores: Vec<f32> = (0..n).map(|i| -(((i * usize::from(head[1] | 1)) % 97) as f32)).collect();
    let types: Vec<i32> = (0..n)
        .map(|i| i32::from((head[2] >> (i % 8)) & 1) * ((i % 7) as i32))
        .collect();
    let mut metadata = vec![
        (
            "tokenizer.ggml.model".to_string(),
            MetaValue::String(if bpe { "gpt2" } else { "llama" }.into()),
        ),
        (
            "tokenizer.ggml.tokens".to_string(),
            MetaValue::Array(MetaArray::String(tokens.clone())),
        ),
        ("tokenizer.ggml.scores".to_string(), MetaValue::Array(MetaArray::F32(scores))),
        ("tokenizer.ggml.token_type".to_string(), MetaValue::Array(MetaArray::I32(types))),
        ("tokenizer.ggml.bos_token_id".to_string(), MetaValue::U32(u32::from(head[3]))),
        ("tokenizer.ggml.eos_token_id".to_string(), MetaValue::U32(u32::from(head[3] / 2))),
    ];
    if bpe {
        // Merges of adjacent vocabulary strings, some of them nonsense.
        let merges: Vec<String> = tokens
            .windows(2)
            .take(512)
            .map(|w| format!("{} {}", w[0], w[1]))
            .collect();
        metadata.push((
            "tokenizer.ggml.merges".to_string(),
            MetaValue::Array(MetaArray::String(merges)),
        ));
        let pre = ["", "llama-bpe", "smollm", "qwen2", "gpt-2", "unknown"][usize::from(head[1]) % 6];
        metadata.push(("tokenizer.ggml.pre".to_string(), MetaValue::String(pre.into())));
    }
    let g = Gguf {
        version: 3,
        metadata,
        tensors: vec![],
        alignment: 32,
        data_offset: 0,
    };
    if let Ok(t) = Tokenizer::from_gguf(&g) {
        let text = String::from_utf8_lossy(text);
        if let Ok(ids) = t.encode(&text, head[2] & 1 == 1) {
            let _ = t.decode(&ids);
        }
        let _ = t.decode(&[0, 1, u32::from(head[3]), u32::MAX]);
    }
});
