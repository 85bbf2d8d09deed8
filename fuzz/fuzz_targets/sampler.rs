//! The sampler with arbitrary settings (NaN, infinities, zero, huge) over arbitrary logits
//! (NaN, ±inf) and histories: a token inside the vocabulary, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp::model::sampler::{Sampler, SamplerConfig};

fn f32_at(d: &[u8], i: usize) -> f32 {
    d.get(i..i + 4)
        .map_or(0.0, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let cfg = SamplerConfig {
        temperature: f32_at(data, 0),
        top_k: usize::from(data[4]) * 7,
        top_p: f32_at(data, 5),
        min_p: f32_at(data, 9),
        repeat_penalty: f32_at(data, 13),
        repeat_last_n: usize::from(data[17]),
        seed: u64::from(data[18]),
    };
    let rest = &data[32..];
    let logits: Vec<f32> = rest.chunks_exact(4).map(|b| f32_at(b, 0)).collect();
    if logits.is_empty() {
        return;
    }
    let history: Vec<u32> = rest.iter().map(|&b| u32::from(b) * 3).collect();
    let mut s = Sampler::new(cfg);
    for _ in 0..3 {
        let id = s.sample(&logits, &history);
        assert!((id as usize) < logits.len(), "token {id} of {}", logits.len());
    }
});
