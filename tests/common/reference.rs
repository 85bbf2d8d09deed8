//! A plain CPU forward pass in f64 for the architectures Wisp runs (`llama`, `qwen2`, `qwen3`,
//! `phi3`, `gemma2`, `gemma3`), written from llama.cpp's graph definitions
//! (`src/models/{llama,qwen2,qwen3,phi3,gemma2,gemma3}.cpp`, `llama-hparams`, `llama-context`)
//! and ggml's CPU `rope_yarn`, not from Wisp's GPU code. It reads the GGUF itself: hyperparameters from
//! the metadata keys llama.cpp reads, every tensor dequantized with Wisp's CPU dequantizer (bit-exact
//! with gguf-py), then everything in f64. No KV cache: every position's logits come from one pass
//! over the whole sequence with a causal (and, on Gemma 3's local layers, sliding-window) mask.

#![allow(dead_code)]

use wisp::gguf::{Gguf, MetaValue};
use wisp::quant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma2,
    Gemma3,
}

/// A deliberate error in the reference: each must make the GPU comparison fail for the models
/// that use the rule it breaks (the test of the tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// RoPE frequency factors not applied.
    FactorsIgnored,
    /// LongRoPE: the short factors used past the original context.
    LongRopeShortFactors,
    /// `rope.scaling.attn_factor` not applied.
    AttnFactorIgnored,
    /// YaRN: plain linear interpolation (no ramp, no magnitude correction).
    YarnAsLinear,
    /// Linear scaling applied on sliding-window layers too (Gemma 3).
    ScaleOnLocalLayers,
    /// Partial rotary: every dimension rotated.
    RotateAllDims,
    /// Gemma 2: attention soft-capping missing.
    AttnSoftcapMissing,
    /// Gemma 2: final logit soft-capping missing.
    FinalSoftcapMissing,
    /// Sliding window one position wider.
    WindowOffByOne,
    /// Gemma 2: odd layers slide instead of even ones.
    SwaLayersSwapped,
    /// Phi-3: K and V swapped in the fused QKV split.
    QkvSplitWrong,
    /// Phi-3: gate and up halves swapped.
    GateUpSwapped,
}

impl Mutation {
    pub const ALL: [Mutation; 12] = [
        Mutation::FactorsIgnored,
        Mutation::LongRopeShortFactors,
        Mutation::AttnFactorIgnored,
        Mutation::YarnAsLinear,
        Mutation::ScaleOnLocalLayers,
        Mutation::RotateAllDims,
        Mutation::AttnSoftcapMissing,
        Mutation::FinalSoftcapMissing,
        Mutation::WindowOffByOne,
        Mutation::SwaLayersSwapped,
        Mutation::QkvSplitWrong,
        Mutation::GateUpSwapped,
    ];
}

/// Hyperparameters, from the metadata llama.cpp's loader reads.
#[derive(Clone, Debug)]
pub struct Hparams {
    pub arch: Arch,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// `attention.key_length` (default n_embd / n_head): the per-head width of q and k.
    pub head_dim_k: usize,
    /// `attention.value_length` (default head_dim_k): the per-head width of v and of the output.
    pub head_dim_v: usize,
    pub n_vocab: usize,
    pub eps: f64,
    pub rope_base: f64,
    /// Gemma 3: `rope_freq_base_train_swa`, fixed at 10 000 by llama.cpp's loader.
    pub rope_base_swa: f64,
    /// Gemma 2/3: `attention.sliding_window` (0 elsewhere).
    pub n_swa: usize,
    /// `rope.dimension_count` (default: the head width).
    pub n_rot: usize,
    /// 1 / `rope.scaling.factor` unless the type is `none`; sliding-window layers of Gemma 3 use 1.
    pub freq_scale: f64,
    pub freq_scale_swa: f64,
    /// YaRN: (original context, β_fast, β_slow).
    pub yarn: Option<(f64, f64, f64)>,
    /// `rope.scaling.attn_factor`.
    pub attn_factor: f64,
    /// Frequency divisors per rotated pair (`rope_freqs` or LongRoPE's, chosen by the context).
    pub freq_factors: Option<Vec<f64>>,
    /// Gemma 2 soft-caps (0: none).
    pub attn_softcap: f64,
    pub final_softcap: f64,
    /// The deliberate error, if any.
    pub mutation: Option<Mutation>,
}

impl Hparams {
    /// llama.cpp's `set_swa_pattern(n)`: layer `il` is a sliding-window layer when
    /// `il % n < n − 1`; Gemma 3 uses 6 (layers 5, 11, … global), Gemma 2 uses 2 (even layers slide).
    pub fn is_swa(&self, il: usize) -> bool {
        let swapped = self.mutation == Some(Mutation::SwaLayersSwapped);
        match self.arch {
            Arch::Gemma3 => self.n_swa > 0 && il % 6 < 5,
            Arch::Gemma2 => self.n_swa > 0 && (il % 2 < 1) != swapped,
            _ => false,
        }
    }

    /// NeoX rotation (pairs `(i, i + d/2)`) for everything but `llama` (LLAMA_ROPE_TYPE_NORM).
    pub fn neox(&self) -> bool {
        self.arch != Arch::Llama
    }

    fn gemma(&self) -> bool {
        matches!(self.arch, Arch::Gemma2 | Arch::Gemma3)
    }
}

/// A row-major (out, in) matrix.
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub w: Vec<f64>,
}

impl Mat {
    /// y = W·x
    pub fn mul(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.cols);
        self.w
            .chunks_exact(self.cols)
            .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.cols..(i + 1) * self.cols]
    }

    /// Root mean square of the elements.
    pub fn rms(&self) -> f64 {
        (self.w.iter().map(|x| x * x).sum::<f64>() / self.w.len() as f64).sqrt()
    }
}

pub struct Layer {
    pub attn_norm: Vec<f64>,
    pub wq: Mat,
    pub wk: Mat,
    pub wv: Mat,
    pub bq: Option<Vec<f64>>,
    pub bk: Option<Vec<f64>>,
    pub bv: Option<Vec<f64>>,
    pub q_norm: Option<Vec<f64>>,
    pub k_norm: Option<Vec<f64>>,
    pub wo: Mat,
    pub post_attn_norm: Option<Vec<f64>>,
    pub ffn_norm: Vec<f64>,
    pub gate: Mat,
    pub up: Mat,
    pub down: Mat,
    pub post_ffn_norm: Option<Vec<f64>>,
}

pub struct RefModel {
    pub hp: Hparams,
    pub token_embd: Mat,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f64>,
    /// `None`: tied to `token_embd`.
    pub output: Option<Mat>,
}

/// What a reference pass saw, to judge whether a test model is numerically meaningful.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Mean over (layer, head, query position ≥ 1) of the largest attention probability.
    pub mean_max_prob: f64,
    /// The largest attention probability anywhere (at query positions ≥ 1).
    pub max_max_prob: f64,
    /// The largest |pre-softmax score| anywhere.
    pub max_abs_score: f64,
}

fn u32_key(g: &Gguf, key: &str) -> Option<usize> {
    match g.get(key)? {
        MetaValue::U32(v) => Some(*v as usize),
        MetaValue::I32(v) => Some(*v as usize),
        MetaValue::U64(v) => Some(*v as usize),
        other => panic!("{key}: unexpected {other:?}"),
    }
}

fn f32_key(g: &Gguf, key: &str) -> Option<f64> {
    match g.get(key)? {
        MetaValue::F32(v) => Some(f64::from(*v)),
        MetaValue::F64(v) => Some(*v),
        other => panic!("{key}: unexpected {other:?}"),
    }
}

/// The dequantized tensor `name` and its ggml dims, or `None` when absent.
fn tensor(g: &Gguf, file: &[u8], name: &str) -> Option<(Vec<u64>, Vec<f64>)> {
    let t = g.tensor(name)?;
    let data = g.tensor_data(file, t).expect("tensor data within the file");
    let v = quant::dequantize_vec(t.ty, data, t.n_elements as usize).expect("dequantize");
    Some((t.dims.clone(), v.into_iter().map(f64::from).collect()))
}

fn mat(g: &Gguf, file: &[u8], name: &str, rows: usize, cols: usize) -> Mat {
    let (dims, w) = tensor(g, file, name).unwrap_or_else(|| panic!("missing {name}"));
    assert_eq!(dims, [cols as u64, rows as u64], "{name} shape");
    Mat { rows, cols, w }
}

fn vector(g: &Gguf, file: &[u8], name: &str, n: usize) -> Option<Vec<f64>> {
    let (dims, v) = tensor(g, file, name)?;
    assert_eq!(dims, [n as u64], "{name} shape");
    Some(v)
}

/// x / sqrt(mean(x²) + eps) · w. (Gemma's GGUF norm weights already hold llama.cpp's 1 + w.)
pub fn rms_norm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    assert_eq!(x.len(), w.len());
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| v * r * w).collect()
}

/// Rotates one head in place at position `pos`, as ggml's `rope_yarn` does: for pair k of the
/// first `n_rot` dimensions, θₑ = pos·base^(−2k/n_rot)/f_k (f_k the frequency factor, 1 without),
/// θᵢ = freq_scale·θₑ; with YaRN the angle is θᵢ(1 − r) + θₑ·r, r = 1 − clamp((k − low)/max(0.001,
/// high − low), 0, 1) over ggml's correction range, and the magnitude gains 1 + 0.1·ln(1/freq_scale);
/// cos and sin are multiplied by attn_factor. Pairs (2k, 2k+1), or with NeoX (k, k + n_rot/2).
/// Dimensions past `n_rot` are left alone.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &mut [f64],
    pos: usize,
    n_rot: usize,
    base: f64,
    freq_scale: f64,
    yarn: Option<(f64, f64, f64)>,
    attn_factor: f64,
    factors: Option<&[f64]>,
    neox: bool,
) {
    let n = n_rot as f64;
    let corr = yarn.map(|(orig, fast, slow)| {
        let dim =
            |beta: f64| n * (orig / (beta * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln());
        (dim(fast).floor().max(0.0), dim(slow).ceil().min(n - 1.0))
    });
    for k in 0..n_rot / 2 {
        let f = factors.and_then(|f| f.get(k)).copied().unwrap_or(1.0);
        let extrap = pos as f64 * base.powf(-2.0 * k as f64 / n) / f;
        let interp = freq_scale * extrap;
        let (theta, m) = match corr {
            None => (interp, attn_factor),
            Some((low, high)) => {
                let y = (k as f64 - low) / (high - low).max(0.001);
                let r = 1.0 - y.clamp(0.0, 1.0);
                (
                    interp * (1.0 - r) + extrap * r,
                    attn_factor * (1.0 + 0.1 * (1.0 / freq_scale).ln()),
                )
            }
        };
        let (s, c) = theta.sin_cos();
        let (ia, ib) = if neox {
            (k, k + n_rot / 2)
        } else {
            (2 * k, 2 * k + 1)
        };
        let (a, b) = (x[ia], x[ib]);
        x[ia] = m * (a * c - b * s);
        x[ib] = m * (a * s + b * c);
    }
}

pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (ggml_gelu).
pub fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

fn add(x: &mut [f64], y: &[f64]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

impl RefModel {
    /// Reads the hyperparameters and every tensor of a GGUF held in `file`, for a context of
    /// `ctx` positions (LongRoPE picks its factors by it), with an optional deliberate error.
    pub fn from_gguf(g: &Gguf, file: &[u8], ctx: usize, mutation: Option<Mutation>) -> RefModel {
        let name = g.architecture().expect("general.architecture");
        let arch = match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "phi3" => Arch::Phi3,
            "gemma2" => Arch::Gemma2,
            "gemma3" => Arch::Gemma3,
            other => panic!("reference: unknown architecture {other}"),
        };
        let k = |s: &str| format!("{name}.{s}");
        let n_embd = u32_key(g, &k("embedding_length")).expect("embedding_length");
        let n_head = u32_key(g, &k("attention.head_count")).expect("head_count");
        let head_dim_k = u32_key(g, &k("attention.key_length")).unwrap_or(n_embd / n_head);
        let tok = g.tensor("token_embd.weight").expect("token_embd.weight");
        let n_ctx_train = u32_key(g, &k("context_length")).expect("context_length");
        // llama.cpp: the type defaults to linear; "none" never scales; yarn mixes (ext_factor 1).
        let ty = g.get_str(&k("rope.scaling.type")).unwrap_or("linear");
        let factor = f32_key(g, &k("rope.scaling.factor")).unwrap_or(0.0);
        let freq_scale = if ty == "none" || factor == 0.0 {
            1.0
        } else {
            1.0 / factor
        };
        let orig_ctx =
            u32_key(g, &k("rope.scaling.original_context_length")).unwrap_or(n_ctx_train);
        let yarn = (ty == "yarn").then_some((orig_ctx as f64, 32.0, 1.0));
        let mut n_rot = u32_key(g, &k("rope.dimension_count")).unwrap_or(head_dim_k);
        if mutation == Some(Mutation::RotateAllDims) {
            n_rot = head_dim_k;
        }
        let read_factors = |name: &str| tensor(g, file, name).map(|(_, v)| v);
        let freq_factors = read_factors("rope_freqs.weight").or_else(|| {
            let long = ctx > orig_ctx && mutation != Some(Mutation::LongRopeShortFactors);
            read_factors(if long {
                "rope_factors_long.weight"
            } else {
                "rope_factors_short.weight"
            })
        });
        let gemma2 = arch == Arch::Gemma2;
        let hp = Hparams {
            arch,
            n_layer: u32_key(g, &k("block_count")).expect("block_count"),
            n_embd,
            n_ff: u32_key(g, &k("feed_forward_length")).expect("feed_forward_length"),
            n_head,
            n_head_kv: u32_key(g, &k("attention.head_count_kv")).unwrap_or(n_head),
            head_dim_k,
            head_dim_v: u32_key(g, &k("attention.value_length")).unwrap_or(head_dim_k),
            n_vocab: tok.dims[1] as usize,
            eps: f32_key(g, &k("attention.layer_norm_rms_epsilon")).expect("rms epsilon"),
            rope_base: f32_key(g, &k("rope.freq_base")).unwrap_or(10_000.0),
            rope_base_swa: if arch == Arch::Gemma3 {
                10_000.0
            } else {
                f32_key(g, &k("rope.freq_base")).unwrap_or(10_000.0)
            },
            n_swa: match arch {
                Arch::Gemma3 => u32_key(g, &k("attention.sliding_window")).expect("window"),
                Arch::Gemma2 => u32_key(g, &k("attention.sliding_window")).unwrap_or(4096),
                _ => 0,
            },
            n_rot,
            freq_scale,
            freq_scale_swa: if arch == Arch::Gemma3
                && mutation != Some(Mutation::ScaleOnLocalLayers)
            {
                1.0
            } else {
                freq_scale
            },
            yarn: if mutation == Some(Mutation::YarnAsLinear) {
                None
            } else {
                yarn
            },
            attn_factor: if mutation == Some(Mutation::AttnFactorIgnored) {
                1.0
            } else {
                f32_key(g, &k("rope.scaling.attn_factor")).unwrap_or(1.0)
            },
            freq_factors: if mutation == Some(Mutation::FactorsIgnored) {
                None
            } else {
                freq_factors
            },
            attn_softcap: if gemma2 && mutation != Some(Mutation::AttnSoftcapMissing) {
                f32_key(g, &k("attn_logit_softcapping")).unwrap_or(50.0)
            } else {
                0.0
            },
            // Gemma 2 defaults to 30; Gemma 3 caps only when its file says so.
            final_softcap: match arch {
                _ if mutation == Some(Mutation::FinalSoftcapMissing) => 0.0,
                Arch::Gemma2 => f32_key(g, &k("final_logit_softcapping")).unwrap_or(30.0),
                Arch::Gemma3 => f32_key(g, &k("final_logit_softcapping")).unwrap_or(0.0),
                _ => 0.0,
            },
            mutation,
        };
        let (e, qd, kd, vd, ff) = (
            hp.n_embd,
            hp.n_head * hp.head_dim_k,
            hp.n_head_kv * hp.head_dim_k,
            hp.n_head_kv * hp.head_dim_v,
            hp.n_ff,
        );
        // Phi-3's fused tensors, split by rows: [Q | K | V] and [gate | up].
        let split = |m: Mat, parts: &[usize]| -> Vec<Mat> {
            let mut out = Vec::new();
            let mut r0 = 0;
            for &rows in parts {
                out.push(Mat {
                    rows,
                    cols: m.cols,
                    w: m.w[r0 * m.cols..(r0 + rows) * m.cols].to_vec(),
                });
                r0 += rows;
            }
            assert_eq!(r0, m.rows);
            out
        };
        let layers = (0..hp.n_layer)
            .map(|il| {
                let n = |s: &str| format!("blk.{il}.{s}");
                let gemma = hp.gemma();
                let qk_norm = matches!(arch, Arch::Qwen3 | Arch::Gemma3);
                let (wq, wk, wv) = if arch == Arch::Phi3 {
                    let m = mat(g, file, &n("attn_qkv.weight"), qd + kd + vd, e);
                    let mut p = split(m, &[qd, kd, vd]).into_iter();
                    let (q, k, v) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                    if mutation == Some(Mutation::QkvSplitWrong) {
                        (q, v, k)
                    } else {
                        (q, k, v)
                    }
                } else {
                    (
                        mat(g, file, &n("attn_q.weight"), qd, e),
                        mat(g, file, &n("attn_k.weight"), kd, e),
                        mat(g, file, &n("attn_v.weight"), vd, e),
                    )
                };
                let (gate, up) = if arch == Arch::Phi3 {
                    let m = mat(g, file, &n("ffn_up.weight"), 2 * ff, e);
                    let mut p = split(m, &[ff, ff]).into_iter();
                    let (a, b) = (p.next().unwrap(), p.next().unwrap());
                    if mutation == Some(Mutation::GateUpSwapped) {
                        (b, a)
                    } else {
                        (a, b)
                    }
                } else {
                    (
                        mat(g, file, &n("ffn_gate.weight"), ff, e),
                        mat(g, file, &n("ffn_up.weight"), ff, e),
                    )
                };
                let l = Layer {
                    attn_norm: vector(g, file, &n("attn_norm.weight"), e).expect("attn_norm"),
                    wq,
                    wk,
                    wv,
                    bq: vector(g, file, &n("attn_q.bias"), qd),
                    bk: vector(g, file, &n("attn_k.bias"), kd),
                    bv: vector(g, file, &n("attn_v.bias"), vd),
                    q_norm: vector(g, file, &n("attn_q_norm.weight"), hp.head_dim_k),
                    k_norm: vector(g, file, &n("attn_k_norm.weight"), hp.head_dim_k),
                    wo: mat(
                        g,
                        file,
                        &n("attn_output.weight"),
                        e,
                        hp.n_head * hp.head_dim_v,
                    ),
                    post_attn_norm: vector(g, file, &n("post_attention_norm.weight"), e),
                    ffn_norm: vector(g, file, &n("ffn_norm.weight"), e).expect("ffn_norm"),
                    gate,
                    up,
                    down: mat(g, file, &n("ffn_down.weight"), e, ff),
                    post_ffn_norm: vector(g, file, &n("post_ffw_norm.weight"), e),
                };
                // What each architecture's graph uses: nothing missing, nothing ignored.
                assert_eq!(l.q_norm.is_some() && l.k_norm.is_some(), qk_norm, "{il}");
                assert_eq!(l.post_attn_norm.is_some(), gemma, "{il}");
                assert_eq!(l.post_ffn_norm.is_some(), gemma, "{il}");
                let biased = arch == Arch::Qwen2;
                assert_eq!(l.bq.is_some() && l.bk.is_some() && l.bv.is_some(), biased);
                l
            })
            .collect();
        RefModel {
            token_embd: mat(g, file, "token_embd.weight", hp.n_vocab, e),
            output_norm: vector(g, file, "output_norm.weight", e).expect("output_norm"),
            output: g
                .tensor("output.weight")
                .map(|_| mat(g, file, "output.weight", hp.n_vocab, e)),
            layers,
            hp,
        }
    }

    /// The logits after each of `tokens` (at positions 0, 1, …) and what attention looked like.
    ///
    /// `kv_f16`: round every key (after RoPE) and value to f16 as soon as it is computed, as a
    /// KV cache stored in f16 does (f32 → f16, round to nearest even); exact math otherwise.
    pub fn logits(&self, tokens: &[u32], kv_f16: bool) -> (Vec<Vec<f64>>, Stats) {
        let hp = &self.hp;
        let (nh, nkv, dk, dv) = (hp.n_head, hp.n_head_kv, hp.head_dim_k, hp.head_dim_v);
        let group = nh / nkv;
        let t = tokens.len();
        let mut stats = Stats::default();
        let mut n_probs = 0usize;

        // inpL = get_rows(token_embd, ids), Gemma: · sqrt(n_embd)
        let mut x: Vec<Vec<f64>> = tokens
            .iter()
            .map(|&id| {
                let s = if hp.gemma() {
                    (hp.n_embd as f64).sqrt()
                } else {
                    1.0
                };
                self.token_embd
                    .row(id as usize)
                    .iter()
                    .map(|v| v * s)
                    .collect()
            })
            .collect();

        for (il, l) in self.layers.iter().enumerate() {
            let swa = hp.is_swa(il);
            let (base, freq_scale) = if swa {
                (hp.rope_base_swa, hp.freq_scale_swa)
            } else {
                (hp.rope_base, hp.freq_scale)
            };
            // Per position: q (nh·dk), k (nkv·dk), v (nkv·dv), after biases, QK-norm and RoPE.
            let mut qs = Vec::with_capacity(t);
            let mut ks = Vec::with_capacity(t);
            let mut vs = Vec::with_capacity(t);
            for (pos, xp) in x.iter().enumerate() {
                let h = rms_norm(xp, &l.attn_norm, hp.eps);
                let mut q = l.wq.mul(&h);
                let mut k = l.wk.mul(&h);
                let mut v = l.wv.mul(&h);
                for (y, b) in [(&mut q, &l.bq), (&mut k, &l.bk), (&mut v, &l.bv)] {
                    if let Some(b) = b {
                        add(y, b);
                    }
                }
                for (y, norm) in [(&mut q, &l.q_norm), (&mut k, &l.k_norm)] {
                    for head in y.chunks_exact_mut(dk) {
                        if let Some(w) = norm {
                            let n = rms_norm(head, w, hp.eps);
                            head.copy_from_slice(&n);
                        }
                        rope(
                            head,
                            pos,
                            hp.n_rot,
                            base,
                            freq_scale,
                            hp.yarn,
                            hp.attn_factor,
                            hp.freq_factors.as_deref(),
                            hp.neox(),
                        );
                    }
                }
                if kv_f16 {
                    for y in k.iter_mut().chain(v.iter_mut()) {
                        *y = half::f16::from_f32(*y as f32).to_f64();
                    }
                }
                qs.push(q);
                ks.push(k);
                vs.push(v);
            }
            // Gemma's 27B models (46 or 62 layers) scale by 1/√(n_embd/n_head) instead.
            let big_gemma = matches!(
                (hp.arch, hp.n_layer),
                (Arch::Gemma2, 46) | (Arch::Gemma3, 62)
            );
            let scale = if big_gemma {
                1.0 / ((hp.n_embd / hp.n_head) as f64).sqrt()
            } else {
                1.0 / (dk as f64).sqrt()
            };
            let window = hp.n_swa + usize::from(hp.mutation == Some(Mutation::WindowOffByOne));
            for (pq, xp) in x.iter_mut().enumerate() {
                let mut o = vec![0.0; nh * dv];
                for head in 0..nh {
                    let kvh = head / group;
                    let q = &qs[pq][head * dk..(head + 1) * dk];
                    // Causal; sliding window: key j masked when pq − j ≥ n_swa (llama.cpp's
                    // LLAMA_SWA_TYPE_STANDARD).
                    let visible: Vec<usize> =
                        (0..=pq).filter(|&j| !swa || pq - j < window).collect();
                    let scores: Vec<f64> = visible
                        .iter()
                        .map(|&j| {
                            let k = &ks[j][kvh * dk..(kvh + 1) * dk];
                            let s = scale * q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>();
                            // Gemma 2: soft-capped before the mask and softmax.
                            if hp.attn_softcap > 0.0 {
                                hp.attn_softcap * (s / hp.attn_softcap).tanh()
                            } else {
                                s
                            }
                        })
                        .collect();
                    let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let p: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let sum: f64 = p.iter().sum();
                    for (&j, pj) in visible.iter().zip(&p) {
                        let v = &vs[j][kvh * dv..(kvh + 1) * dv];
                        for (oi, vi) in o[head * dv..(head + 1) * dv].iter_mut().zip(v) {
                            *oi += pj / sum * vi;
                        }
                    }
                    for s in &scores {
                        stats.max_abs_score = stats.max_abs_score.max(s.abs());
                    }
                    if pq > 0 {
                        let pmax = 1.0 / sum; // the largest p is exp(0)
                        stats.mean_max_prob += pmax;
                        stats.max_max_prob = stats.max_max_prob.max(pmax);
                        n_probs += 1;
                    }
                }
                let mut a = l.wo.mul(&o);
                if let Some(w) = &l.post_attn_norm {
                    a = rms_norm(&a, w, hp.eps);
                }
                add(xp, &a);
                // Feed-forward
                let h = rms_norm(xp, &l.ffn_norm, hp.eps);
                let g = l.gate.mul(&h);
                let u = l.up.mul(&h);
                let act: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(&g, &u)| {
                        if hp.gemma() {
                            gelu_tanh(g) * u
                        } else {
                            silu(g) * u
                        }
                    })
                    .collect();
                let mut f = l.down.mul(&act);
                if let Some(w) = &l.post_ffn_norm {
                    f = rms_norm(&f, w, hp.eps);
                }
                add(xp, &f);
            }
        }
        stats.mean_max_prob /= n_probs.max(1) as f64;
        let out = self.output.as_ref().unwrap_or(&self.token_embd);
        let logits = x
            .iter()
            .map(|xp| {
                let mut l = out.mul(&rms_norm(xp, &self.output_norm, hp.eps));
                if hp.final_softcap > 0.0 {
                    l.iter_mut()
                        .for_each(|v| *v = hp.final_softcap * (*v / hp.final_softcap).tanh());
                }
                l
            })
            .collect();
        (logits, stats)
    }
}
