//! Every architecture Wisp runs (`llama`, `qwen2`, `qwen3`, `gemma3`) on tiny random-weight GGUF
//! models written in memory with [`GgufWriter`], against an independent f64 CPU forward pass
//! (`tests/common/reference.rs`), on every adapter: at tier T0 and at the adapter's highest tier
//! with its own kernel family, and at the highest tier with the other family too.
//!
//! Per model and configuration: one token at a time (matvec + split-K decode attention) with the
//! logits compared at every position; the whole sequence at once (matmul + tiled prefill
//! attention); and two prefill chunks continued by decode, alternating `Want::Argmax` and
//! `Want::Logits`. The models cover GQA ratios 1, 2 and 4, a head width that is not
//! n_embd / n_head, tied and untied outputs, Qwen 2's biases, QK-norm, Gemma 3's pre/post norms,
//! GeGLU, embedding scale and sliding-window layers (window 4, sequences of 14, a global layer
//! at index 5), and eleven block types (F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
//! Q6_K). The weights are scaled so that the models are numerically meaningful (checked before
//! any GPU work): attention is neither uniform nor one-hot, logits are moderate.

mod common;
#[path = "common/reference.rs"]
mod reference;

use wisp::gguf::{Gguf, GgufWriter, MetaValue, TensorInfo};
use wisp::gpu::{Gpu, Tier};
use wisp::model::forward::{Model, Output, Want};
use wisp::model::weights::TensorSource;
use wisp::model::ModelError;
use wisp::ops::attention::KvType;
use wisp::ops::synth::{random_weight, scale_offsets, Rng};
use wisp::quant::{self, GgmlType};

use reference::{Mutation, RefModel};

/// Error measure, per compared position: max over the vocabulary of |gpu − reference| / max
/// |reference logit| (the logit scale: the models' logits reach 7.5 to 20, RMS about 2.5).
///
/// With an f32 KV cache (tier T0) the reference is exact math, and the GPU computes in f32
/// throughout: measured worst 1.5e-6 (Qwen 2; Llama 9.7e-7, Qwen 3 7.4e-7, Gemma 3 4.5e-7; lavapipe
/// and SwiftShader, both kernel families). 1e-5 leaves a 6.8× margin.
///
/// From T1 the cache holds f16: every key and value is rounded (relative 2⁻¹¹ ≈ 4.9e-4), which
/// alone moves the exact logits by 2.0e-4 (Gemma 3) to 1.6e-3 (Qwen 2, whose large k/v biases
/// inflate |k|) of the logit scale, too much for a tight bound. So the reference rounds its keys
/// (after RoPE) and values to f16 the same way (round to nearest even; layer 0 of the lavapipe
/// cache equals it bit for bit but for the 0–2 elements whose f32 value sits on a rounding
/// boundary). What remains is f32 error plus those boundary flips, amplified through the later
/// layers: measured worst 9.6e-5 (Qwen 2; Gemma 3 6.1e-5, Qwen 3 6.7e-6, Llama 3.7e-6; lavapipe
/// T2, both families). 5e-4 leaves a 5.2× margin for adapters whose f32 error (and so flip count)
/// is larger, and is still 3× below the f16 effect on Qwen 2: comparing an f16 cache with exact
/// math (or rounding at the wrong RoPE angle) fails.
const TOL_F32_CACHE: f64 = 1e-5;
const TOL_F16_CACHE: f64 = 5e-4;

/// Positions in the KV cache.
const CTX: u32 = 32;

/// A GGUF held in memory, as the model loader reads it.
struct MemGguf {
    gguf: Gguf,
    bytes: Vec<u8>,
}

impl TensorSource for MemGguf {
    fn gguf(&self) -> &Gguf {
        &self.gguf
    }
    /// In odd-sized pieces, as IndexedDB records arrive in the browser: the loader's 4-byte
    /// carry between pieces is exercised by every model.
    async fn read_tensor(
        &self,
        t: &TensorInfo,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        for piece in self.gguf.tensor_data(&self.bytes, t)?.chunks(997) {
            sink(piece)?;
        }
        Ok(())
    }
}

use GgmlType as G;

/// One tiny model.
struct Spec {
    arch: &'static str,
    n_embd: u32,
    n_head: u32,
    n_head_kv: u32,
    /// Written as `attention.key_length` and `attention.value_length` when set.
    head_dim: Option<u32>,
    n_ff: u32,
    n_layer: u32,
    n_vocab: u32,
    /// No `output.weight`: the output projection is `token_embd.weight`.
    tied: bool,
    /// `attention.sliding_window` (Gemma 3), 0 for none.
    window: u32,
    rope_base: f32,
    embd: GgmlType,
    output: GgmlType,
    /// wq, wk, wv, wo, gate, up, down; layer `il` takes entry `il % len`. Phi-3 writes wq, wk, wv
    /// as one `attn_qkv` of wq's type, and gate, up as one `ffn_up` of up's type. Where gate and
    /// up share a type the loader fuses them (one projection), elsewhere it keeps them apart, and
    /// likewise wq, wk and wv (one weight with three outputs): the specs have both.
    layers: &'static [[GgmlType; 7]],
    seq: usize,
    seed: u64,
    /// More metadata (RoPE scaling, soft-caps, …), after `<arch>.`.
    extra: &'static [X],
    /// RoPE frequency-factor tensors.
    factors: Factors,
}

/// A metadata entry of [`Spec::extra`].
#[derive(Clone, Copy, Debug)]
enum X {
    U32(&'static str, u32),
    F32(&'static str, f32),
    Str(&'static str, &'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Factors {
    None,
    /// `rope_freqs.weight` (Llama 3.1+).
    Freqs,
    /// `rope_factors_short.weight` and `rope_factors_long.weight` (Phi-3 LongRoPE).
    LongRope,
}

impl Spec {
    fn head_dim(&self) -> u32 {
        self.head_dim.unwrap_or(self.n_embd / self.n_head)
    }

    fn n_rot(&self) -> u32 {
        self.extra
            .iter()
            .find_map(|x| match x {
                X::U32("rope.dimension_count", n) => Some(*n),
                _ => None,
            })
            .unwrap_or(self.head_dim())
    }

    fn describe(&self) -> String {
        format!(
            "{} n_embd {} heads {}/{} head_dim {} n_ff {} layers {} vocab {} {} window {} {:?} {:?}",
            self.arch,
            self.n_embd,
            self.n_head,
            self.n_head_kv,
            self.head_dim(),
            self.n_ff,
            self.n_layer,
            self.n_vocab,
            if self.tied { "tied" } else { "untied" },
            self.window,
            self.factors,
            self.extra,
        )
    }
}

/// Llama: GQA 2, untied output, normal RoPE.
const LLAMA: Spec = Spec {
    arch: "llama",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 2,
    head_dim: None,
    n_ff: 256,
    n_layer: 2,
    n_vocab: 300,
    tied: false,
    window: 0,
    rope_base: 10_000.0,
    embd: G::Q4_1,
    output: G::Q8_0,
    layers: &[
        [G::Q4_0, G::Q5_0, G::Q8_0, G::F16, G::Q4_1, G::Q5_0, G::Q4_K],
        [G::Q4_1, G::Q4_1, G::Q4_1, G::Q5_0, G::F16, G::Q4_0, G::Q6_K],
    ],
    seq: 14,
    seed: 1,
    extra: &[],
    factors: Factors::None,
};

/// Qwen 2: MHA (GQA 1), q/k/v biases, tied output, NeoX RoPE.
const QWEN2: Spec = Spec {
    arch: "qwen2",
    n_embd: 64,
    n_head: 4,
    n_head_kv: 4,
    head_dim: None,
    n_ff: 256,
    n_layer: 2,
    n_vocab: 96,
    tied: true,
    window: 0,
    rope_base: 1_000_000.0,
    embd: G::Q8_0,
    output: G::F32, // unused: tied
    layers: &[
        [G::F32, G::Q4_0, G::Q4_1, G::Q5_0, G::F16, G::Q8_0, G::Q5_K],
        [G::F16, G::F16, G::F16, G::Q4_0, G::Q4_1, G::F32, G::Q3_K],
    ],
    seq: 14,
    seed: 2,
    extra: &[],
    factors: Factors::None,
};

/// Qwen 3: GQA 4, QK-norm, head_dim 64 ≠ n_embd / n_head, untied output.
const QWEN3: Spec = Spec {
    arch: "qwen3",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 1,
    head_dim: Some(64),
    n_ff: 256,
    n_layer: 2,
    n_vocab: 200,
    tied: false,
    window: 0,
    rope_base: 1_000_000.0,
    embd: G::F16,
    output: G::Q4_0,
    layers: &[
        [G::Q8_0, G::Q4_0, G::Q5_0, G::Q6_K, G::Q4_1, G::F32, G::Q2_K],
        [G::Q4_1, G::Q8_0, G::F16, G::Q4_K, G::Q4_0, G::Q4_0, G::Q3_K],
    ],
    seq: 14,
    seed: 3,
    extra: &[],
    factors: Factors::None,
};

/// Gemma 3: GQA 2, head_dim 64 ≠ n_embd / n_head, 7 layers (5 local, 1 global, 1 local),
/// window 4, embedding scale, post-norms, GeGLU, tied output, and linear RoPE scaling by 8 (as the
/// larger Gemma 3 models have), which applies to the global layer only.
const GEMMA3: Spec = Spec {
    arch: "gemma3",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 2,
    head_dim: Some(64),
    n_ff: 160,
    n_layer: 7,
    n_vocab: 256,
    tied: true,
    window: 4,
    rope_base: 1_000_000.0,
    embd: G::Q8_0,
    output: G::F32, // unused: tied
    layers: &[
        [G::Q8_0, G::Q4_0, G::Q5_0, G::Q5_K, G::Q4_1, G::Q8_0, G::F16],
        [G::Q4_0, G::Q8_0, G::Q4_1, G::Q6_K, G::F16, G::Q5_0, G::Q8_0],
        [
            G::Q5_0,
            G::Q5_0,
            G::Q5_0,
            G::Q4_K,
            G::Q8_0,
            G::Q8_0,
            G::Q4_0,
        ],
    ],
    seq: 14,
    seed: 4,
    extra: &[
        X::Str("rope.scaling.type", "linear"),
        X::F32("rope.scaling.factor", 8.0),
    ],
    factors: Factors::None,
};

/// Llama 3.1+: `rope_freqs.weight` frequency factors (random in [1, 8], so a factor applied to
/// the wrong pair shows), a small base so that every pair turns within 14 positions, and a
/// partial rotary width (24 of 32).
const LLAMA31: Spec = Spec {
    arch: "llama",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 2,
    head_dim: None,
    n_ff: 256,
    n_layer: 2,
    n_vocab: 160,
    tied: true,
    window: 0,
    rope_base: 100.0,
    embd: G::Q8_0,
    output: G::F32, // unused: tied
    layers: &[
        [G::Q5_1, G::Q8_0, G::Q5_0, G::Q4_0, G::F16, G::Q4_1, G::Q4_K],
        [G::Q8_0, G::Q4_1, G::F16, G::Q8_0, G::Q5_0, G::Q5_1, G::Q6_K],
    ],
    seq: 14,
    seed: 5,
    extra: &[X::U32("rope.dimension_count", 24)],
    factors: Factors::Freqs,
};

/// Qwen 2 with YaRN: factor 4 over an original context of 64 (the ramp covers pairs 0–3 of 8),
/// attn_factor 1.1, MHA, biases, untied output.
const QWEN2_YARN: Spec = Spec {
    arch: "qwen2",
    n_embd: 64,
    n_head: 4,
    n_head_kv: 4,
    head_dim: None,
    n_ff: 256,
    n_layer: 2,
    n_vocab: 120,
    tied: false,
    window: 0,
    rope_base: 10_000.0,
    embd: G::F16,
    output: G::Q8_0,
    layers: &[
        [G::Q8_0, G::Q5_0, G::F16, G::Q4_0, G::Q8_0, G::Q4_1, G::Q4_K],
        [G::Q4_0, G::Q8_0, G::Q4_1, G::F16, G::Q5_1, G::Q8_0, G::Q5_K],
    ],
    seq: 14,
    seed: 6,
    extra: &[
        X::Str("rope.scaling.type", "yarn"),
        X::F32("rope.scaling.factor", 4.0),
        X::U32("rope.scaling.original_context_length", 64),
        X::F32("rope.scaling.attn_factor", 1.1),
    ],
    factors: Factors::None,
};

/// Phi-3: fused QKV and gate+up, GQA 2, partial rotary (16 of 32), LongRoPE factors with an
/// original context of 16 (the test's 32 positions take the long factors) and its attn_factor,
/// untied output.
const PHI3: Spec = Spec {
    arch: "phi3",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 2,
    head_dim: None,
    n_ff: 256,
    n_layer: 2,
    n_vocab: 150,
    tied: false,
    window: 0,
    rope_base: 10_000.0,
    embd: G::Q8_0,
    output: G::Q5_0,
    layers: &[
        [G::Q8_0, G::F32, G::F32, G::Q5_1, G::F32, G::Q5_0, G::Q4_K],
        [G::Q4_0, G::F32, G::F32, G::Q8_0, G::F32, G::Q4_1, G::Q6_K],
    ],
    seq: 14,
    seed: 7,
    extra: &[
        X::U32("rope.dimension_count", 16),
        X::U32("rope.scaling.original_context_length", 16),
        X::F32("rope.scaling.attn_factor", 1.19),
        X::U32("attention.sliding_window", 2047),
    ],
    factors: Factors::LongRope,
};

/// Gemma 2: attention and final soft-caps set low (8 and 6) so they bind on these small
/// logits, window 4 on even layers, post-norms, GeGLU, embedding scale, head_dim 64.
const GEMMA2: Spec = Spec {
    arch: "gemma2",
    n_embd: 128,
    n_head: 4,
    n_head_kv: 2,
    head_dim: Some(64),
    n_ff: 160,
    n_layer: 4,
    n_vocab: 200,
    tied: true,
    window: 4,
    rope_base: 10_000.0,
    embd: G::Q8_0,
    output: G::F32, // unused: tied
    layers: &[
        [G::Q8_0, G::Q4_0, G::Q5_0, G::Q5_K, G::Q4_1, G::Q8_0, G::F16],
        [G::Q5_1, G::Q8_0, G::Q4_1, G::Q6_K, G::F16, G::F16, G::Q8_0],
    ],
    seq: 14,
    seed: 8,
    extra: &[
        X::F32("attn_logit_softcapping", 8.0),
        X::F32("final_logit_softcapping", 6.0),
    ],
    factors: Factors::None,
};

/// `rows` × `k` random weights of `ty` with root mean square about `rms`.
///
/// Block types: [`random_weight`]'s random quant bits, with every f16 scale field (`d`, `dmin`,
/// `m`) replaced by a random-sign value of magnitude in [0.5, 1), then all of them multiplied by
/// one factor that brings the dequantized RMS to `rms` (the weights are linear in the scale
/// fields). Random scales spanning 2¹⁵ would let a few blocks dominate every dot product. Scale
/// fields stay normal f16 numbers: where that needs a larger factor the RMS comes out larger.
/// Float types: uniform values.
fn weight(ty: GgmlType, rows: u64, k: u64, rms: f64, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let n = (rows * k) as usize;
    let uniform = |rng: &mut Rng| f64::from(rng.unit()) * rms * 3f64.sqrt();
    match ty {
        G::F32 => (0..n)
            .flat_map(|_| (uniform(&mut rng) as f32).to_le_bytes())
            .collect(),
        G::F16 => (0..n)
            .flat_map(|_| half::f16::from_f64(uniform(&mut rng)).to_le_bytes())
            .collect(),
        _ => {
            let mut data = random_weight(ty, rows, k, seed);
            let bb = ty.geometry().expect("block type").block_bytes as usize;
            let set = |data: &mut [u8], f: &mut dyn FnMut(f64) -> f64| {
                for block in data.chunks_exact_mut(bb) {
                    for &o in scale_offsets(ty) {
                        let old = half::f16::from_le_bytes([block[o], block[o + 1]]).to_f64();
                        let new = half::f16::from_f64(f(old));
                        assert!(new.is_normal(), "{ty} scale {new} not a normal f16");
                        block[o..o + 2].copy_from_slice(&new.to_le_bytes());
                    }
                }
            };
            set(&mut data, &mut |_| {
                let m = 0.5 + 0.25 * (f64::from(rng.unit()) + 1.0);
                if rng.next_u64() & 1 == 0 {
                    m
                } else {
                    -m
                }
            });
            let now = dequant_rms(ty, &data, n);
            // Smallest factor that keeps every |scale| ≥ 0.5·factor a normal f16.
            let factor = (rms / now).max(2f64.powi(-13));
            set(&mut data, &mut |s| s * factor);
            data
        }
    }
}

fn dequant_rms(ty: GgmlType, data: &[u8], n: usize) -> f64 {
    let v = quant::dequantize_vec(ty, data, n).expect("dequantize");
    (v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n as f64).sqrt()
}

/// A norm or bias vector (F32): `center + spread·U(−1, 1)`.
fn vector(n: u32, center: f64, spread: f64, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..n)
        .flat_map(|_| ((center + spread * f64::from(rng.unit())) as f32).to_le_bytes())
        .collect()
}

/// The GGUF of `s`, as bytes.
fn build(s: &Spec) -> Vec<u8> {
    build_with(s, &|_| {})
}

/// The GGUF of `s`, with `edit` applied to the writer last (extra keys or tensors).
fn build_with(s: &Spec, edit: &dyn Fn(&mut GgufWriter)) -> Vec<u8> {
    let mut w = GgufWriter::new();
    let a = s.arch;
    w.add("general.architecture", MetaValue::String(a.into()));
    let mut meta = vec![
        ("block_count", MetaValue::U32(s.n_layer)),
        ("context_length", MetaValue::U32(CTX)),
        ("embedding_length", MetaValue::U32(s.n_embd)),
        ("feed_forward_length", MetaValue::U32(s.n_ff)),
        ("attention.head_count", MetaValue::U32(s.n_head)),
        ("attention.head_count_kv", MetaValue::U32(s.n_head_kv)),
        ("attention.layer_norm_rms_epsilon", MetaValue::F32(1e-6)),
        ("rope.freq_base", MetaValue::F32(s.rope_base)),
    ];
    if let Some(d) = s.head_dim {
        meta.push(("attention.key_length", MetaValue::U32(d)));
        meta.push(("attention.value_length", MetaValue::U32(d)));
    }
    if s.window > 0 {
        meta.push(("attention.sliding_window", MetaValue::U32(s.window)));
    }
    for (k, v) in meta {
        w.add(format!("{a}.{k}"), v);
    }
    for x in s.extra {
        let (k, v) = match *x {
            X::U32(k, v) => (k, MetaValue::U32(v)),
            X::F32(k, v) => (k, MetaValue::F32(v)),
            X::Str(k, v) => (k, MetaValue::String(v.into())),
        };
        w.add(format!("{a}.{k}"), v);
    }
    let mut seed = s.seed * 1000;
    let mut next = || {
        seed += 1;
        seed
    };
    let mut mat = |w: &mut GgufWriter, name: String, ty: GgmlType, rows: u32, k: u32, gain: f64| {
        let (rows, k) = (u64::from(rows), u64::from(k));
        let data = weight(ty, rows, k, gain / (k as f64).sqrt(), next());
        w.add_tensor(name, ty, &[k, rows], data).expect("tensor");
    };
    let (e, hd) = (s.n_embd, s.head_dim());
    let (qd, kvd) = (s.n_head * hd, s.n_head_kv * hd);
    // Output rows of RMS 2.5/√n_embd on the final norm's output (RMS ≈ 1) give logits of
    // RMS ≈ 2.5; a tied embedding has that RMS, an untied one 0.5.
    let embd_gain = if s.tied {
        2.5
    } else {
        0.5 * f64::from(e).sqrt()
    };
    mat(
        &mut w,
        "token_embd.weight".into(),
        s.embd,
        s.n_vocab,
        e,
        embd_gain,
    );
    let mut vseed = s.seed * 1000 + 500;
    let mut vec = |w: &mut GgufWriter, name: String, n: u32, center: f64, spread: f64| {
        vseed += 1;
        w.add_tensor(
            name,
            G::F32,
            &[u64::from(n)],
            vector(n, center, spread, vseed),
        )
        .expect("tensor");
    };
    for il in 0..s.n_layer {
        let t = s.layers[il as usize % s.layers.len()];
        let n = |x: &str| format!("blk.{il}.{x}");
        let phi3 = a == "phi3";
        let gemma = a == "gemma2" || a == "gemma3";
        vec(&mut w, n("attn_norm.weight"), e, 1.0, 0.2);
        if phi3 {
            mat(&mut w, n("attn_qkv.weight"), t[0], qd + 2 * kvd, e, 1.2);
        } else {
            mat(&mut w, n("attn_q.weight"), t[0], qd, e, 1.3);
            mat(&mut w, n("attn_k.weight"), t[1], kvd, e, 1.3);
            mat(&mut w, n("attn_v.weight"), t[2], kvd, e, 1.0);
        }
        if a == "qwen2" {
            vec(&mut w, n("attn_q.bias"), qd, 0.0, 0.5);
            vec(&mut w, n("attn_k.bias"), kvd, 0.0, 0.5);
            vec(&mut w, n("attn_v.bias"), kvd, 0.0, 0.5);
        }
        if a == "qwen3" || a == "gemma3" {
            vec(&mut w, n("attn_q_norm.weight"), hd, 1.2, 0.3);
            vec(&mut w, n("attn_k_norm.weight"), hd, 1.2, 0.3);
        }
        mat(&mut w, n("attn_output.weight"), t[3], e, qd, 1.0);
        if gemma {
            vec(&mut w, n("post_attention_norm.weight"), e, 1.0, 0.2);
        }
        vec(&mut w, n("ffn_norm.weight"), e, 1.0, 0.2);
        if phi3 {
            // Gate rows first, then up rows.
            mat(&mut w, n("ffn_up.weight"), t[5], 2 * s.n_ff, e, 1.3);
        } else {
            mat(&mut w, n("ffn_gate.weight"), t[4], s.n_ff, e, 1.5);
            mat(&mut w, n("ffn_up.weight"), t[5], s.n_ff, e, 1.0);
        }
        mat(&mut w, n("ffn_down.weight"), t[6], e, s.n_ff, 1.0);
        if gemma {
            vec(&mut w, n("post_ffw_norm.weight"), e, 1.0, 0.2);
        }
    }
    vec(&mut w, "output_norm.weight".into(), e, 1.0, 0.2);
    if !s.tied {
        mat(&mut w, "output.weight".into(), s.output, s.n_vocab, e, 2.5);
    }
    let half = s.n_rot() / 2;
    match s.factors {
        Factors::None => {}
        Factors::Freqs => vec(&mut w, "rope_freqs.weight".into(), half, 4.5, 3.5),
        Factors::LongRope => {
            vec(&mut w, "rope_factors_short.weight".into(), half, 1.25, 0.25);
            vec(&mut w, "rope_factors_long.weight".into(), half, 4.0, 3.0);
        }
    }
    edit(&mut w);
    w.to_bytes()
}

/// max |got − want| / max |want|; infinite when `got` holds a NaN or an infinity.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    if !got.iter().all(|g| g.is_finite()) {
        return f64::INFINITY;
    }
    let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0f64, f64::max)
        / scale
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Collects failures and the worst errors of one (model, adapter, tier, kernel family).
struct Check<'a> {
    label: String,
    /// The reference the GPU must match: exact, or with the f16 rounding of an f16 cache.
    want: &'a [Vec<f64>],
    /// Exact math, for the report.
    exact: &'a [Vec<f64>],
    tol: f64,
    worst: f64,
    worst_at: String,
    worst_exact: f64,
    failures: Vec<String>,
}

impl Check<'_> {
    fn logits(&mut self, what: &str, pos: usize, out: Output) {
        let Output::Logits(l) = out else {
            self.failures
                .push(format!("[{}] {what} pos {pos}: not logits", self.label));
            return;
        };
        let err = rel_err(&l, &self.want[pos]);
        self.worst_exact = self.worst_exact.max(rel_err(&l, &self.exact[pos]));
        if err > self.worst {
            self.worst = err;
            self.worst_at = format!("{what} pos {pos}");
        }
        if err > self.tol {
            self.failures.push(format!(
                "[{}] {what} pos {pos}: logit error {err:.3e} of the logit scale > {:.1e}",
                self.label, self.tol
            ));
        }
    }

    fn argmax(&mut self, what: &str, pos: usize, out: Output) {
        let Output::Token(id) = out else {
            self.failures
                .push(format!("[{}] {what} pos {pos}: not a token", self.label));
            return;
        };
        let want = &self.want[pos];
        let best = argmax(want);
        let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
        // A different id is acceptable only when its logit ties the best within tolerance.
        let ok = (id as usize) < want.len() && want[best] - want[id as usize] <= self.tol * scale;
        if !ok {
            self.failures.push(format!(
                "[{}] {what} pos {pos}: argmax {id}, reference argmax {best}",
                self.label
            ));
        }
    }
}

fn run(gpu: &Gpu, model: &mut Model, tokens: &[u32], want: Want) -> Output {
    pollster::block_on(model.forward(gpu, tokens, want)).expect("forward")
}

/// Runs `s` on every adapter at T0 and at the adapter's highest tier; panics with every failure.
fn check_arch(s: &Spec) {
    common::progress(&format!("{}: every adapter, tier and family", s.describe()));
    let bytes = build(s);
    let gguf = Gguf::parse(&bytes).expect("parse");
    let src = MemGguf { gguf, bytes };
    let exact = RefModel::from_gguf(&src.gguf, &src.bytes, CTX as usize, None);
    let mut rng = Rng(s.seed.wrapping_mul(0xd134_2543_de82_ef95) | 1);
    let tokens: Vec<u32> = (0..s.seq)
        .map(|_| (rng.next_u64() % u64::from(s.n_vocab)) as u32)
        .collect();
    let (want, stats) = exact.logits(&tokens, false);
    let (want_f16, _) = exact.logits(&tokens, true);
    let logit_scale = want.iter().flatten().fold(0f64, |m, x| m.max(x.abs()));
    let logit_rms = (want.iter().flatten().map(|x| x * x).sum::<f64>()
        / (want.len() * want[0].len()) as f64)
        .sqrt();
    let f16_shift = (0..s.seq)
        .map(|p| {
            let f: Vec<f32> = want_f16[p].iter().map(|&x| x as f32).collect();
            rel_err(&f, &want[p])
        })
        .fold(0f64, f64::max);
    let (wq, wo) = (&exact.layers[0].wq, &exact.layers[0].wo);
    eprintln!(
        "{}: tokens {tokens:?}; exact logits max |·| {logit_scale:.2}, rms {logit_rms:.2}; \
         attention max prob mean {:.2}, max {:.3}, max |score| {:.1}; rms wq {:.3} wo {:.3}; \
         f16 K/V move the exact logits by {f16_shift:.2e} of their scale",
        s.describe(),
        stats.mean_max_prob,
        stats.max_max_prob,
        stats.max_abs_score,
        wq.rms(),
        wo.rms(),
    );
    // Numerically meaningful: attention neither uniform nor one-hot, logits moderate.
    assert!(
        stats.mean_max_prob > 0.2 && stats.mean_max_prob < 0.9 && stats.max_abs_score < 30.0,
        "{}: attention degenerate: {stats:?}",
        s.arch
    );
    assert!(
        logit_scale > 1.0 && logit_scale < 30.0,
        "logit scale {logit_scale}"
    );

    // Prefill chunks then decode: [0, split1) and [split1, split2) prefilled, the rest decoded;
    // with window 4 the second chunk and the decode steps see keys slide out of the window.
    let (split1, split2) = (5, 11);
    let mut failures = Vec::new();
    for mut gpu in common::devices() {
        let top = gpu.caps.tier;
        let default_family = gpu.caps.family;
        let other_family = common::FAMILIES
            .into_iter()
            .find(|&f| f != default_family)
            .expect("two families");
        // T0 and the highest tier with the adapter's own kernel family, the highest tier with
        // the other family too (software adapters default to Row, GPUs to Workgroup), that one
        // with its weights in textures (`WeightStore::Texture`).
        let mut configs = vec![(Tier::T0, default_family, false)];
        if top != Tier::T0 {
            configs.push((top, default_family, false));
        }
        configs.push((top, other_family, true));
        for (tier, family, textures) in configs {
            gpu.set_tier(tier).expect("tier");
            gpu.set_family(family);
            gpu.set_weight_textures(textures);
            // The cache type follows the tier at load time (f32 at T0, f16 above).
            let mut model = pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {}))
                .expect("model loads");
            let f16 = model.cache.shape().dtype == KvType::F16;
            let label = format!(
                "{} {} {:?} {} {} cache, weights in {}",
                s.arch,
                gpu.caps.adapter.name,
                tier,
                family.name(),
                if f16 { "f16" } else { "f32" },
                if textures { "textures" } else { "buffers" }
            );
            let mut c = Check {
                label: label.clone(),
                want: if f16 { &want_f16 } else { &want },
                exact: &want,
                tol: if f16 { TOL_F16_CACHE } else { TOL_F32_CACHE },
                worst: 0.0,
                worst_at: String::new(),
                worst_exact: 0.0,
                failures: Vec::new(),
            };
            // 1. Decode, every position.
            for (p, &t) in tokens.iter().enumerate() {
                let out = run(&gpu, &mut model, &[t], Want::Logits);
                c.logits("decode", p, out);
            }
            // 2. The whole sequence at once.
            model.reset();
            let out = run(&gpu, &mut model, &tokens, Want::Logits);
            c.logits("prefill", s.seq - 1, out);
            // 3. Two prefill chunks, then decode; Argmax and Logits alternating.
            model.reset();
            let out = run(&gpu, &mut model, &tokens[..split1], Want::Argmax);
            c.argmax("chunk 1", split1 - 1, out);
            let out = run(&gpu, &mut model, &tokens[split1..split2], Want::Logits);
            c.logits("chunk 2", split2 - 1, out);
            for p in split2..s.seq {
                if p % 2 == 0 {
                    let out = run(&gpu, &mut model, &tokens[p..=p], Want::Argmax);
                    c.argmax("chunked decode", p, out);
                } else {
                    let out = run(&gpu, &mut model, &tokens[p..=p], Want::Logits);
                    c.logits("chunked decode", p, out);
                }
            }
            assert_eq!(model.pos() as usize, s.seq);
            eprintln!(
                "[{label}] worst logit error {:.2e} of the logit scale (at {}), tolerance {:.0e}; \
                 {:.2e} from exact math",
                c.worst, c.worst_at, c.tol, c.worst_exact
            );
            failures.extend(c.failures);
        }
        gpu.set_tier(top).expect("tier");
        gpu.set_family(default_family);
        gpu.set_weight_textures(false);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn llama_matches_reference() {
    check_arch(&LLAMA);
}

#[test]
fn qwen2_matches_reference() {
    check_arch(&QWEN2);
}

#[test]
fn qwen3_matches_reference() {
    check_arch(&QWEN3);
}

#[test]
fn gemma3_matches_reference() {
    check_arch(&GEMMA3);
}

#[test]
fn llama31_rope_freqs_match_reference() {
    check_arch(&LLAMA31);
}

#[test]
fn qwen2_yarn_matches_reference() {
    check_arch(&QWEN2_YARN);
}

#[test]
fn phi3_matches_reference() {
    check_arch(&PHI3);
}

#[test]
fn gemma2_matches_reference() {
    check_arch(&GEMMA2);
}

/// The test of the tests: each deliberate error in the reference ([`Mutation`]) must make the
/// GPU's logits fail the comparison for every model whose math it changes, and must change at
/// least one model's math (so that no rule goes untested). One GPU run per model (the first
/// adapter, T0, f32 cache, one token at a time), then every mutated reference against it.
#[test]
fn reference_mutations_are_caught() {
    let specs = [&LLAMA31, &QWEN2_YARN, &PHI3, &GEMMA2, &GEMMA3];
    let mut gpu = common::devices().remove(0);
    gpu.set_tier(Tier::T0).expect("tier");
    let mut caught = vec![Vec::new(); Mutation::ALL.len()];
    let mut escaped = Vec::new();
    for s in specs {
        let bytes = build(s);
        let gguf = Gguf::parse(&bytes).expect("parse");
        let src = MemGguf { gguf, bytes };
        let mut rng = Rng(s.seed.wrapping_mul(0xd134_2543_de82_ef95) | 1);
        let tokens: Vec<u32> = (0..s.seq)
            .map(|_| (rng.next_u64() % u64::from(s.n_vocab)) as u32)
            .collect();
        let mut model =
            pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {})).expect("loads");
        let got: Vec<Vec<f32>> = tokens
            .iter()
            .map(|&t| match run(&gpu, &mut model, &[t], Want::Logits) {
                Output::Logits(l) => l,
                Output::Token(_) => panic!("not logits"),
            })
            .collect();
        let worst = |r: &RefModel| {
            let (want, _) = r.logits(&tokens, false);
            (0..s.seq)
                .map(|p| rel_err(&got[p], &want[p]))
                .fold(0f64, f64::max)
        };
        let exact = RefModel::from_gguf(&src.gguf, &src.bytes, CTX as usize, None);
        let (exact_logits, _) = exact.logits(&tokens, false);
        let base = worst(&exact);
        assert!(base <= TOL_F32_CACHE, "{}: {base:.2e}", s.describe());
        for (mi, &m) in Mutation::ALL.iter().enumerate() {
            let mutated = RefModel::from_gguf(&src.gguf, &src.bytes, CTX as usize, Some(m));
            let (ml, _) = mutated.logits(&tokens, false);
            // Does this mutation change this model's exact math at all?
            let moved = (0..s.seq)
                .map(|p| {
                    let scale = exact_logits[p].iter().fold(0f64, |m, x| m.max(x.abs()));
                    let d = exact_logits[p]
                        .iter()
                        .zip(&ml[p])
                        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                    d / scale
                })
                .fold(0f64, f64::max);
            if moved <= 1e-9 {
                continue;
            }
            let err = worst(&mutated);
            eprintln!(
                "{:>22?} on {:6}: GPU is {err:.2e} from it (tolerance {TOL_F32_CACHE:.0e})",
                m, s.arch
            );
            if err > TOL_F32_CACHE {
                caught[mi].push(s.arch);
            } else {
                escaped.push(format!("{m:?} on {} ({err:.2e})", s.describe()));
            }
        }
    }
    let untested: Vec<_> = Mutation::ALL
        .iter()
        .zip(&caught)
        .filter(|(_, c)| c.is_empty())
        .map(|(m, _)| format!("{m:?}"))
        .collect();
    assert!(
        escaped.is_empty() && untested.is_empty(),
        "mutations the GPU comparison did not catch: {escaped:?}; mutations no model exercises: {untested:?}"
    );
}

/// A model feature Wisp cannot compute is refused at load, by name, from the header alone:
/// one small GGUF per case (the Llama test model with one key or tensor added).
#[test]
fn unsupported_features_are_refused_by_name() {
    use wisp::model::config::{Config, ConfigError};
    let f32_tensor = |name: &'static str, n: u64| {
        move |w: &mut GgufWriter| {
            w.add_tensor(name, G::F32, &[n], vec![0u8; n as usize * 4])
                .expect("tensor");
        }
    };
    let key = |k: &'static str, v: MetaValue| {
        move |w: &mut GgufWriter| {
            w.add(k, v.clone());
        }
    };
    type Edit = Box<dyn Fn(&mut GgufWriter)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "llama.rope.scaling.type",
            Box::new(key(
                "llama.rope.scaling.type",
                MetaValue::String("longrope".into()),
            )),
        ),
        (
            "llama.rope.scaling.type",
            Box::new(key(
                "llama.rope.scaling.type",
                MetaValue::String("su".into()),
            )),
        ),
        (
            "llama.expert_count",
            Box::new(key("llama.expert_count", MetaValue::U32(8))),
        ),
        (
            "llama.attention.causal",
            Box::new(key("llama.attention.causal", MetaValue::Bool(false))),
        ),
        (
            "llama.attention.sliding_window",
            Box::new(key("llama.attention.sliding_window", MetaValue::U32(8))),
        ),
        (
            "llama.final_logit_softcapping",
            Box::new(key("llama.final_logit_softcapping", MetaValue::F32(30.0))),
        ),
        (
            "llama.logit_scale",
            Box::new(key("llama.logit_scale", MetaValue::F32(0.5))),
        ),
        (
            "llama.rope.scaling.yarn_log_multiplier",
            Box::new(key(
                "llama.rope.scaling.yarn_log_multiplier",
                MetaValue::F32(0.1),
            )),
        ),
        (
            "llama.some_new_feature",
            Box::new(key("llama.some_new_feature", MetaValue::U32(1))),
        ),
        (
            "split.count",
            Box::new(key("split.count", MetaValue::U16(3))),
        ),
        (
            "blk.0.attn_output.bias",
            Box::new(f32_tensor("blk.0.attn_output.bias", 128)),
        ),
        (
            "blk.1.ffn_gate_inp.weight",
            Box::new(f32_tensor("blk.1.ffn_gate_inp.weight", 128)),
        ),
        (
            "blk.7.attn_norm.weight",
            Box::new(f32_tensor("blk.7.attn_norm.weight", 128)),
        ),
        (
            "rope_factors_long.weight",
            Box::new(f32_tensor("rope_factors_long.weight", 16)),
        ),
    ];
    let mut fails = Vec::new();
    for (name, edit) in &cases {
        let g = Gguf::parse(&build_with(&LLAMA, edit.as_ref())).expect("parse");
        match Config::from_gguf(&g) {
            Err(ConfigError::Refused(list)) if list.iter().any(|r| r.name == *name) => {
                let msg = ConfigError::Refused(list).to_string();
                eprintln!("{name}: {msg}");
                assert!(msg.contains(name), "{msg}");
            }
            other => fails.push(format!("{name}: {other:?}")),
        }
    }
    // What makes no difference is accepted: a sliding window as long as the context, no experts.
    for edit in [
        key("llama.attention.sliding_window", MetaValue::U32(CTX)),
        key("llama.expert_count", MetaValue::U32(0)),
    ] {
        let g = Gguf::parse(&build_with(&LLAMA, &edit)).expect("parse");
        if let Err(e) = Config::from_gguf(&g) {
            fails.push(format!("refused without reason: {e}"));
        }
    }
    // Loading refuses too, before any upload.
    let bytes = build_with(&LLAMA, &key("llama.expert_count", MetaValue::U32(8)));
    let src = MemGguf {
        gguf: Gguf::parse(&bytes).expect("parse"),
        bytes,
    };
    let gpu = common::devices().remove(0);
    match pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {})) {
        Err(e) if e.to_string().contains("llama.expert_count") => {}
        Err(e) => fails.push(format!("load: {e}")),
        Ok(_) => fails.push("load: a mixture-of-experts model loaded".into()),
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// A warm decode step creates no GPU object (no buffer, bind group or pipeline), records one
/// compute pass and one submission, and the same number of dispatches each step: counted by
/// the engine itself (`Gpu::counts`), on every adapter, for greedy and for logits steps. No
/// pipeline is compiled after the model has loaded.
#[test]
fn warm_decode_steps_create_no_gpu_objects() {
    // Llama and Phi-3 with their weights in storage buffers, Gemma 3 and 2 in textures.
    for (s, textures) in [
        (&LLAMA, false),
        (&GEMMA3, true),
        (&PHI3, false),
        (&GEMMA2, true),
    ] {
        let bytes = build(s);
        let src = MemGguf {
            gguf: Gguf::parse(&bytes).expect("parse"),
            bytes,
        };
        for mut gpu in common::devices() {
            gpu.set_weight_textures(textures);
            let mut model =
                pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {})).expect("loads");
            let label = format!(
                "{} on {} (weights in {})",
                s.arch,
                gpu.caps.adapter.name,
                if textures { "textures" } else { "buffers" }
            );
            // Every pipeline was compiled while loading: the first requests compile none.
            let loaded = gpu.counts();
            run(&gpu, &mut model, &[1, 2, 3, 4, 5], Want::Argmax);
            run(&gpu, &mut model, &[6, 7], Want::Logits);
            // Warm-up: the first decode steps of each kind compile and bind.
            for want in [Want::Argmax, Want::Logits, Want::Argmax] {
                run(&gpu, &mut model, &[7], want);
            }
            assert_eq!(
                gpu.counts().since(&loaded).pipelines,
                0,
                "{label}: pipelines compiled after load"
            );
            let mut per_step = Vec::new();
            for (i, want) in [Want::Argmax, Want::Argmax, Want::Logits, Want::Argmax]
                .into_iter()
                .enumerate()
            {
                let before = gpu.counts();
                run(&gpu, &mut model, &[(i as u32 * 5 + 3) % s.n_vocab], want);
                let d = gpu.counts().since(&before);
                assert_eq!(
                    (d.buffers, d.bind_groups, d.pipelines, d.passes, d.submits),
                    (0, 0, 0, 1, 1),
                    "{label}: step {i} ({want:?}) created or recorded {d:?}"
                );
                per_step.push(d.dispatches);
            }
            let argmax_steps = [per_step[0], per_step[1], per_step[3]];
            assert!(
                argmax_steps.iter().all(|&d| d == per_step[0]),
                "{label}: dispatches per step vary: {per_step:?}"
            );
            eprintln!(
                "{label}: a warm decode step creates 0 GPU objects, 1 pass, 1 submit, {} dispatches \
                 ({:.1} per layer; logits step {})",
                per_step[0],
                per_step[0] as f64 / f64::from(s.n_layer),
                per_step[2]
            );
        }
    }
}

/// A tensor source that runs `hook` before reading tensor number `at` (a device lost mid-load).
struct HookedSource<'a> {
    inner: &'a MemGguf,
    at: usize,
    seen: std::cell::Cell<usize>,
    hook: &'a dyn Fn(),
}

impl TensorSource for HookedSource<'_> {
    fn gguf(&self) -> &Gguf {
        &self.inner.gguf
    }
    async fn read_tensor(
        &self,
        t: &TensorInfo,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let i = self.seen.get();
        self.seen.set(i + 1);
        if i == self.at {
            (self.hook)();
        }
        self.inner.read_tensor(t, sink).await
    }
}

/// Where a device is lost in [`device_loss_is_reported_within_a_step_and_recoverable`].
#[derive(Clone, Copy, Debug)]
enum LossAt {
    /// Before the fourth tensor is uploaded.
    Load,
    /// Just before the prompt's forward.
    Prefill,
    /// After the third greedy token.
    Decode,
}

/// The prompt, then greedy decoding to `n` tokens; `destroy_after` destroys the device once that
/// many tokens are out. The error (if any) comes with the tokens made before it.
fn greedy(
    gpu: &Gpu,
    model: &mut Model,
    n: usize,
    destroy_after: Option<usize>,
) -> (Vec<u32>, Result<(), ModelError>) {
    let mut out = Vec::new();
    let mut input = vec![1, 2, 3, 4, 5];
    while out.len() < n {
        if destroy_after == Some(out.len()) {
            gpu.device.destroy();
        }
        match pollster::block_on(model.forward(gpu, &input, Want::Argmax)) {
            Ok(Output::Token(id)) => {
                out.push(id);
                input = vec![id];
            }
            Ok(other) => panic!("argmax step gave {other:?}"),
            Err(e) => return (out, Err(e)),
        }
    }
    (out, Ok(()))
}

/// A device lost while loading, before the prompt's prefill and in the middle of decoding
/// (forced with `device.destroy()`) gives `GpuError::DeviceLost` with its reason to the caller
/// at the very step it happened, on every adapter; nothing hangs. A new device and model then
/// generate the same greedy tokens as before the loss.
#[test]
fn device_loss_is_reported_within_a_step_and_recoverable() {
    use wisp::gpu::{GpuError, GpuOptions};
    let s = &LLAMA;
    let bytes = build(s);
    let src = MemGguf {
        gguf: Gguf::parse(&bytes).expect("parse"),
        bytes,
    };
    const N: usize = 8;
    let lost = |r: Result<(), ModelError>, label: &str| match r {
        Err(ModelError::Gpu(GpuError::DeviceLost(reason))) => {
            assert!(reason.contains("destroyed"), "{label}: reason {reason}");
            eprintln!("{label}: {}", ModelError::Gpu(GpuError::DeviceLost(reason)));
        }
        other => panic!("{label}: expected DeviceLost, got {other:?}"),
    };
    for first in common::devices() {
        let name = first.caps.adapter.name.clone();
        let open = || {
            let opts = GpuOptions {
                adapter: Some(name.clone()),
                ..GpuOptions::default()
            };
            pollster::block_on(Gpu::new(&opts)).expect("a new device on the same adapter")
        };
        let load = |gpu: &Gpu| {
            pollster::block_on(Model::load(gpu, &src, CTX, &mut |_, _| {})).expect("loads")
        };
        let (want, r) = greedy(&first, &mut load(&first), N, None);
        r.expect("greedy run");
        drop(first);
        for at in [LossAt::Load, LossAt::Prefill, LossAt::Decode] {
            let label = format!("{name}, lost during {at:?}");
            let gpu = open();
            match at {
                LossAt::Load => {
                    let hook = || gpu.device.destroy();
                    let hooked = HookedSource {
                        inner: &src,
                        at: 3,
                        seen: Default::default(),
                        hook: &hook,
                    };
                    let r = pollster::block_on(Model::load(&gpu, &hooked, CTX, &mut |_, _| {}));
                    assert_eq!(
                        hooked.seen.get(),
                        4,
                        "{label}: the load went on after the loss"
                    );
                    lost(r.map(|_| ()), &label);
                }
                LossAt::Prefill | LossAt::Decode => {
                    let mut model = load(&gpu);
                    let after = if matches!(at, LossAt::Prefill) { 0 } else { 3 };
                    let (got, r) = greedy(&gpu, &mut model, N, Some(after));
                    assert_eq!(got, want[..after], "{label}: tokens before the loss");
                    lost(r, &label);
                    // Later calls keep failing the same way, without hanging.
                    let again = pollster::block_on(model.forward(&gpu, &[1], Want::Logits));
                    lost(again.map(|_| ()), &format!("{label}, called again"));
                }
            }
            drop(gpu);
            let gpu = open();
            let (again, r) = greedy(&gpu, &mut load(&gpu), N, None);
            r.unwrap_or_else(|e| panic!("{label}: the new engine failed: {e}"));
            assert_eq!(again, want, "{label}: the new engine's greedy tokens");
        }
    }
}

/// Speculative decoding's two primitives on every architecture and adapter: a verify pass over
/// the last token and its drafts (`Model::forward_verify`) picks at every position the token
/// that plain greedy decoding picks, and rolling the cache back (`Model::truncate`) after a
/// rejected draft leaves no trace of it. Drafts all right, all wrong, and wrong in the middle
/// reproduce plain greedy decoding's 16 tokens; after a rollback the next step's logits are
/// bit-identical whatever the rejected drafts were.
#[test]
fn verify_passes_reproduce_greedy_decoding() {
    const N: usize = 16;
    for s in [
        &LLAMA,
        &QWEN2,
        &QWEN3,
        &GEMMA3,
        &LLAMA31,
        &QWEN2_YARN,
        &PHI3,
        &GEMMA2,
    ] {
        let bytes = build(s);
        let src = MemGguf {
            gguf: Gguf::parse(&bytes).expect("parse"),
            bytes,
        };
        for gpu in common::devices() {
            let label = format!("{} on {}", s.arch, gpu.caps.adapter.name);
            let mut model =
                pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {})).expect("loads");
            let (plain, r) = greedy(&gpu, &mut model, N, None);
            r.expect("greedy decoding");
            let n_vocab = model.cfg.n_vocab;
            for mode in ["right", "wrong", "middle"] {
                model.reset();
                let mut got = match run(&gpu, &mut model, &[1, 2, 3, 4, 5], Want::Argmax) {
                    Output::Token(id) => vec![id],
                    other => panic!("{other:?}"),
                };
                let mut accepted_total = 0;
                while got.len() < N {
                    let i = got.len();
                    let d = 4.min(N - 1 - i);
                    let last = got[i - 1];
                    if d == 0 {
                        match run(&gpu, &mut model, &[last], Want::Argmax) {
                            Output::Token(id) => got.push(id),
                            other => panic!("{other:?}"),
                        }
                        continue;
                    }
                    let mut draft = plain[i..i + d].to_vec();
                    match mode {
                        "wrong" => draft.iter_mut().for_each(|t| *t = (*t + 1) % n_vocab),
                        "middle" => draft[d / 2] = (draft[d / 2] + 1) % n_vocab,
                        _ => {}
                    }
                    let pos0 = model.pos() as usize;
                    let mut input = vec![last];
                    input.extend_from_slice(&draft);
                    let picks = pollster::block_on(model.forward_verify(&gpu, &input))
                        .unwrap_or_else(|e| panic!("{label}: verify: {e}"));
                    assert_eq!(picks.len(), input.len(), "{label}");
                    assert_eq!(model.pos() as usize, pos0 + input.len(), "{label}");
                    let a = draft.iter().zip(&picks).take_while(|(x, p)| x == p).count();
                    accepted_total += a;
                    got.extend_from_slice(&picks[..=a]);
                    model.truncate(pos0 + 1 + a);
                    assert_eq!(model.pos() as usize, pos0 + 1 + a, "{label}: rolled back");
                }
                assert_eq!(got, plain, "{label}: drafts {mode}");
                match mode {
                    "right" => assert!(accepted_total >= N / 2, "{label}: {accepted_total}"),
                    "wrong" => assert_eq!(accepted_total, 0, "{label}"),
                    _ => {}
                }
            }
            // Rollback: two different rejected drafts, then the same next token.
            let mut after = Vec::new();
            for wrong in [[7u32, 8, 9], [11, 3, 5]] {
                model.reset();
                let first = match run(&gpu, &mut model, &[1, 2, 3, 4, 5], Want::Argmax) {
                    Output::Token(id) => id,
                    other => panic!("{other:?}"),
                };
                let pos0 = model.pos() as usize;
                let input = [
                    first,
                    wrong[0] % n_vocab,
                    wrong[1] % n_vocab,
                    wrong[2] % n_vocab,
                ];
                pollster::block_on(model.forward_verify(&gpu, &input)).expect("verify");
                model.truncate(pos0 + 1);
                match run(&gpu, &mut model, &[plain[1]], Want::Logits) {
                    Output::Logits(l) => after.push(l),
                    other => panic!("{other:?}"),
                }
            }
            assert!(
                after[0]
                    .iter()
                    .zip(&after[1])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{label}: the next step's logits depend on a rejected draft"
            );
        }
    }
}

/// A verify pass refuses what it cannot take, by name: nothing, more than `MAX_VERIFY` tokens,
/// an id outside the vocabulary, more positions than the context has left.
#[test]
fn verify_pass_rejects_bad_input() {
    let bytes = build(&LLAMA);
    let src = MemGguf {
        gguf: Gguf::parse(&bytes).expect("parse"),
        bytes,
    };
    let gpu = common::devices().into_iter().next().expect("an adapter");
    let mut model =
        pollster::block_on(Model::load(&gpu, &src, CTX, &mut |_, _| {})).expect("loads");
    let too_many = vec![1u32; wisp::model::forward::MAX_VERIFY + 1];
    for (input, want) in [
        (vec![], "1 to 16"),
        (too_many, "1 to 16"),
        (vec![1, model.cfg.n_vocab], "outside the vocabulary"),
    ] {
        let e = pollster::block_on(model.forward_verify(&gpu, &input)).expect_err("refused");
        assert!(e.to_string().contains(want), "{e}");
    }
    run(&gpu, &mut model, &vec![1; CTX as usize - 2], Want::Argmax);
    let e = pollster::block_on(model.forward_verify(&gpu, &[1, 2, 3])).expect_err("refused");
    assert!(e.to_string().contains("context full"), "{e}");
    assert_eq!(model.pos(), CTX - 2, "a refused pass changes nothing");
}
