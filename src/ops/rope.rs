//! Rotary position embedding (RoPE) on the GPU, in place, with its f64 CPU reference.
//!
//! Layout: `x` is f32 `[tokens][heads][head_dim]`, row-major (Q or K straight out of the
//! projection); token `t` is at position `pos0 + t` (the model's positions are consecutive).
//! For each token, head and `i < n_rot / 2`, the pair `(a, b)` is rotated by
//! `θ_i = pos · freq_scale · freq_base^(−2i / n_rot)`:
//! `(a, b) ← (a·cos θ − b·sin θ, a·sin θ + b·cos θ)`. Dimensions `n_rot..head_dim` are untouched.
//!
//! The pairs follow ggml's two modes (`ggml_rope_ext`, `mode` 0 and `GGML_ROPE_TYPE_NEOX`):
//! [`RopeMode::Normal`] pairs `(2i, 2i + 1)` and [`RopeMode::Neox`] pairs `(i, i + n_rot/2)`, both
//! with ggml's angle `θ_i = p · base^(−2i/n_rot)` and rotation sign. llama.cpp's
//! `llama_model_rope_type` uses Normal for `llama` (Llama, SmolLM2) and Neox for `qwen2`, `qwen3`,
//! `gemma3`. Gemma 3 uses `gemma3.rope.freq_base` (1e6) on its global layers and 10 000 on its
//! sliding-window layers: the GGUF has no key for the local base; llama.cpp sets
//! `rope_freq_base_train_swa = 10000` (and `rope_freq_scale_train_swa = 1`) in its Gemma 3
//! hyperparameter loader, with `set_swa_pattern(6)`: layer `il` slides unless `il % 6 == 5`
//! (layers 5, 11, 17, … are global). A linear `rope.scaling.factor` (the larger Gemma 3 models)
//! therefore applies to the global layers only.
//!
//! Beyond the plain angle, ggml's `rope_yarn` (and so every llama.cpp model) has three per-pair
//! refinements, all folded into the per-pair turns on the host:
//! - frequency factors `f_i` (`rope_freqs.weight`, Llama 3.1+; Phi-3's LongRoPE
//!   `rope_factors_short/long.weight`) divide the angle: `θ_i = pos · base^(−2i/n_rot) / f_i`;
//! - linear scaling multiplies it by `freq_scale = 1 / rope.scaling.factor`;
//! - YaRN mixes the scaled and unscaled angle per pair with a ramp over the correction range
//!   `[low, high]` (from the original context length, β_fast 32, β_slow 1):
//!   `θ_i = θ_i,extrap · (freq_scale · (1 − r_i) + r_i)`, `r_i = 1 − clamp((i − low) / max(0.001,
//!   high − low), 0, 1)`, and multiplies cos and sin by `1 + 0.1 · ln(1 / freq_scale)`.
//!
//! cos and sin are also multiplied by `attn_factor` (`rope.scaling.attn_factor`, default 1).
//! Dimensions past `n_rot` (partial rotary) are copied, not scaled.
//!
//! Accuracy: the angle is computed in turns with the position's bits kept exact (see
//! `shaders/rope.wgsl`), and sin/cos come from polynomials, not the driver. The error bound is
//! [`rope_abs_bound`]; ggml's own f32 angle loses about `θ·2⁻²⁴` radians, which this does not.

use crate::gpu::Encoder;
use std::sync::Arc;

use super::{check_binding, dispatch, grid};
use crate::gpu::{preprocess, Bind, Gpu, GpuError, KernelSpec};

const SRC: &str = include_str!("../../shaders/rope.wgsl");
/// `rope_sin_cos`, appended to this kernel and to `qk_rope.wgsl`.
pub(crate) const ANGLE: &str = include_str!("../../shaders/rope_angle.wgsl");

/// Positions must be below this (2¹⁷): `pos · hi` is exact in f32 only up to there.
pub const ROPE_MAX_POS: u32 = 1 << 17;
/// The largest `n_rot` the kernel's frequency table holds.
pub const ROPE_MAX_N_ROT: u32 = 512;

/// Which dimensions form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(2i, 2i + 1)`: ggml mode 0, llama.cpp `LLAMA_ROPE_TYPE_NORM` (Llama).
    Normal,
    /// Pairs `(i, i + n_rot/2)`: `GGML_ROPE_TYPE_NEOX` (Qwen 2, Qwen 3, Gemma 3).
    Neox,
}

/// YaRN's settings (ggml's `ext_factor` 1): the ramp between interpolated and extrapolated
/// angles and the magnitude correction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Yarn {
    /// `rope.scaling.original_context_length` (the training context when absent).
    pub orig_ctx: u32,
    /// ggml's `beta_fast` (32) and `beta_slow` (1).
    pub beta_fast: f32,
    pub beta_slow: f32,
}

impl Yarn {
    /// ggml's `ggml_rope_yarn_corr_dims`: the pair range `[low, high]` the ramp runs over.
    pub fn corr_dims(&self, n_rot: u32, freq_base: f32) -> (f64, f64) {
        let n = f64::from(n_rot);
        let dim = |beta: f32| {
            n * (f64::from(self.orig_ctx) / (f64::from(beta) * std::f64::consts::TAU)).ln()
                / (2.0 * f64::from(freq_base).ln())
        };
        let low = dim(self.beta_fast).floor().max(0.0);
        let high = dim(self.beta_slow).ceil().min(n - 1.0);
        (low, high)
    }
}

/// The RoPE settings of one attention layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// How dimensions are paired.
    pub mode: RopeMode,
    /// Values per head in `x`.
    pub head_dim: u32,
    /// Rotated dimensions (even, ≤ `head_dim`, ≤ [`ROPE_MAX_N_ROT`]); `rope.dimension_count`.
    pub n_rot: u32,
    /// `rope.freq_base` (the local 10 000 on Gemma 3's sliding-window layers).
    pub freq_base: f32,
    /// Linear position scale, 1 unless the model sets `rope.scaling.factor` (then its inverse).
    pub freq_scale: f32,
    /// YaRN (`rope.scaling.type = yarn`), or `None`.
    pub yarn: Option<Yarn>,
    /// Multiplier of cos and sin (`rope.scaling.attn_factor`, 1 when absent).
    pub attn_factor: f32,
    /// Divisor of each pair's frequency (`n_rot / 2` values), or `None` for all ones.
    pub factors: Option<Arc<[f32]>>,
}

impl Rope {
    /// Every dimension rotated, no position scaling.
    pub fn new(mode: RopeMode, head_dim: u32, freq_base: f32) -> Rope {
        Rope {
            mode,
            head_dim,
            n_rot: head_dim,
            freq_base,
            freq_scale: 1.0,
            yarn: None,
            attn_factor: 1.0,
            factors: None,
        }
    }

    /// Turns per position of pair `i` in f64: `base^(−2i/n_rot) / f_i / 2π` times `freq_scale`,
    /// or, with YaRN, times its per-pair mix of `freq_scale` and 1.
    pub fn turns_per_pos(&self, i: u32) -> f64 {
        let f = self
            .factors
            .as_ref()
            .and_then(|f| f.get(i as usize))
            .map_or(1.0, |&f| f64::from(f));
        let extrap =
            f64::from(self.freq_base).powf(-2.0 * f64::from(i) / f64::from(self.n_rot)) / f;
        let scale = f64::from(self.freq_scale);
        let mix = match &self.yarn {
            None => scale,
            Some(y) => {
                let (low, high) = y.corr_dims(self.n_rot, self.freq_base);
                let ramp = 1.0 - ((f64::from(i) - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
                scale * (1.0 - ramp) + ramp
            }
        };
        extrap * mix / std::f64::consts::TAU
    }

    /// The multiplier of cos and sin: `attn_factor`, with YaRN times `1 + 0.1·ln(1/freq_scale)`.
    pub fn mscale(&self) -> f64 {
        let a = f64::from(self.attn_factor);
        match self.yarn {
            Some(_) => a * (1.0 + 0.1 * (1.0 / f64::from(self.freq_scale)).ln()),
            None => a,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct RopeParams {
    pairs: u32,
    heads: u32,
    head_dim: u32,
    half: u32,
    pos0: u32,
    neox: u32,
    grid_x: u32,
    mscale: f32,
    hi: [f32; 256],
    lo: [f32; 256],
}

/// `t` as `hi + lo`: `hi` has at most 7 significant bits (so `pos · hi` is exact in f32 for
/// `pos < 2¹⁷`), `|lo| ≤ 2⁻⁷·t`.
fn split7(t: f64) -> (f32, f32) {
    if t == 0.0 || !t.is_normal() {
        return (0.0, t as f32);
    }
    // t is in [2^e, 2^(e+1)): scaled into [64, 128) and rounded to an integer.
    let e = ((t.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let scale = 2f64.powi(6 - e);
    let hi = (t * scale).round() / scale;
    (hi as f32, (t - hi) as f32)
}

fn shape_err(detail: String) -> GpuError {
    GpuError::Shape {
        tensor: "rope".into(),
        detail,
    }
}

/// Checks the settings and sizes; returns the number of rotated pairs.
pub(crate) fn check(
    x_bytes: u64,
    tokens: u32,
    heads: u32,
    pos0: u32,
    rope: &Rope,
) -> Result<u32, GpuError> {
    let Rope {
        head_dim, n_rot, ..
    } = *rope;
    if tokens == 0 || heads == 0 || head_dim == 0 {
        return Err(shape_err(format!(
            "x is [{tokens}][{heads}][{head_dim}]: every dimension must be at least 1"
        )));
    }
    if n_rot == 0 || !n_rot.is_multiple_of(2) || n_rot > head_dim || n_rot > ROPE_MAX_N_ROT {
        return Err(shape_err(format!(
            "n_rot {n_rot} must be even, at least 2, at most head_dim {head_dim} and at most {ROPE_MAX_N_ROT}"
        )));
    }
    let positive = |v: f32| v.is_finite() && v > 0.0;
    if !positive(rope.freq_base) || !positive(rope.freq_scale) || !positive(rope.attn_factor) {
        return Err(GpuError::BadSetting {
            name: "rope freq_base/freq_scale/attn_factor".into(),
            value: format!(
                "{}/{}/{}",
                rope.freq_base, rope.freq_scale, rope.attn_factor
            ),
            reason: "must be finite and positive".into(),
        });
    }
    if let Some(f) = &rope.factors {
        if f.len() != (n_rot / 2) as usize || !f.iter().all(|&v| positive(v)) {
            return Err(GpuError::BadSetting {
                name: "rope frequency factors".into(),
                value: format!("{} values", f.len()),
                reason: format!("must be {} finite positive values (n_rot / 2)", n_rot / 2),
            });
        }
    }
    if let Some(y) = &rope.yarn {
        if y.orig_ctx == 0 || !positive(y.beta_fast) || !positive(y.beta_slow) {
            return Err(GpuError::BadSetting {
                name: "rope YaRN".into(),
                value: format!("{y:?}"),
                reason: "original context, beta_fast and beta_slow must be positive".into(),
            });
        }
    }
    let last = u64::from(pos0) + u64::from(tokens) - 1;
    if last >= u64::from(ROPE_MAX_POS) {
        return Err(shape_err(format!(
            "positions {pos0}..={last} reach past {}, the largest position rotated exactly",
            ROPE_MAX_POS - 1
        )));
    }
    let values = u64::from(tokens) * u64::from(heads) * u64::from(head_dim);
    if x_bytes < values * 4 {
        return Err(shape_err(format!(
            "x is [{tokens}][{heads}][{head_dim}] ({values} values) but the buffer holds {}",
            x_bytes / 4
        )));
    }
    u32::try_from(u64::from(tokens) * u64::from(heads) * u64::from(n_rot / 2)).map_err(|_| {
        shape_err(format!(
            "[{tokens}][{heads}][{head_dim}] has too many pairs"
        ))
    })
}

/// Records RoPE in place on `x` (`[tokens][heads][head_dim]`, token `t` at position `pos0 + t`)
/// into `enc`. Sizes and settings are checked before anything is recorded.
pub async fn encode_rope(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    tokens: u32,
    heads: u32,
    pos0: u32,
    rope: &Rope,
) -> Result<(), GpuError> {
    let pairs = check(x.size(), tokens, heads, pos0, rope)?;
    check_binding(gpu, "rope x", x.size())?;
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "rope",
            variant: 0,
            source: &|_| preprocess(&format!("{SRC}\n{ANGLE}"), &[]),
            bindings: &[Bind::Uniform, Bind::ReadWrite],
            constants: &[],
        })
        .await?;
    let (gx, gy) = grid(gpu, pairs.div_ceil(64));
    let mut p = RopeParams {
        pairs,
        heads,
        head_dim: rope.head_dim,
        half: rope.n_rot / 2,
        pos0,
        neox: u32::from(rope.mode == RopeMode::Neox),
        grid_x: gx,
        mscale: rope.mscale() as f32,
        hi: [0.0; 256],
        lo: [0.0; 256],
    };
    turns_table(rope, &mut p.hi, &mut p.lo);
    dispatch(enc, &kernel, &p, &[x], (gx, gy, 1));
    Ok(())
}

/// The kernels' per-pair turns per position, split into `hi + lo` (see [`split7`]).
pub(crate) fn turns_table(rope: &Rope, hi: &mut [f32; 256], lo: &mut [f32; 256]) {
    for i in 0..rope.n_rot / 2 {
        (hi[i as usize], lo[i as usize]) = split7(rope.turns_per_pos(i));
    }
}

/// Convenience for tests and tools: uploads `x`, applies RoPE, reads it back.
pub async fn run_rope(
    gpu: &Gpu,
    x: &[f32],
    tokens: u32,
    heads: u32,
    pos0: u32,
    rope: &Rope,
) -> Result<Vec<f32>, GpuError> {
    check(x.len() as u64 * 4, tokens, heads, pos0, rope)?;
    let xb = gpu.storage_from("rope x", x);
    let mut enc = Encoder::new(gpu);
    encode_rope(gpu, &mut enc, &xb, tokens, heads, pos0, rope).await?;
    enc.submit();
    gpu.read_f32(&xb, x.len()).await
}

/// The f64 reference on `x` (`[tokens][heads][head_dim]`, at least that many values): the
/// rotated copy, with `θ` and its sine and cosine in f64.
pub fn rope_ref(x: &[f32], tokens: u32, heads: u32, pos0: u32, rope: &Rope) -> Vec<f64> {
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let (hd, half) = (rope.head_dim as usize, rope.n_rot as usize / 2);
    for t in 0..tokens as usize {
        let pos = f64::from(pos0) + t as f64;
        for h in 0..heads as usize {
            let base = (t * heads as usize + h) * hd;
            for i in 0..half {
                let theta = std::f64::consts::TAU * pos * rope.turns_per_pos(i as u32);
                let (s, c) = theta.sin_cos();
                let (s, c) = (s * rope.mscale(), c * rope.mscale());
                let (j0, j1) = match rope.mode {
                    RopeMode::Normal => (base + 2 * i, base + 2 * i + 1),
                    RopeMode::Neox => (base + i, base + i + half),
                };
                let (a, b) = (y[j0], y[j1]);
                y[j0] = a * c - b * s;
                y[j1] = a * s + b * c;
            }
        }
    }
    y
}

/// The bound on `|y_gpu − y_ref|` per unit of `|a| + |b|` for pair `i` at position `pos`.
///
/// With u = 2⁻²⁴ and `θt = pos · t_i` the angle in turns: the angle is off by at most
/// `u·(1 + 3·θt/128)` turns (`lo`'s rounding and `pos·lo`'s, each ≤ u·2⁻⁷·θt, and the sum's,
/// ≤ u·(1 + 2⁻⁷·θt); the fraction and the quadrant split are exact), plus 2u radians from the
/// multiplication by π/2; the polynomial sine and cosine are within 3u each (truncation < 2·10⁻⁹,
/// Horner rounding on terms ≤ 1/2); the rotation `a·cos − b·sin` adds 2u·(|a| + |b|). All of it
/// scales with `mscale`, whose f32 rounding and multiplication add 2u more (relative).
pub fn rope_abs_bound(rope: &Rope, pos: u32, i: u32) -> f64 {
    let u = 1.0 / 16_777_216.0;
    let turns = f64::from(pos) * rope.turns_per_pos(i);
    let m = rope.mscale();
    m * (std::f64::consts::TAU * u * (1.0 + 3.0 * turns / 128.0)
        + 2.0 * u
        + 3.0 * u
        + 2.0 * u
        + 2.0 * u)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::Tier;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            crate::ops::act::validate_wgsl(
                "rope",
                tier,
                &preprocess(&format!("{SRC}\n{ANGLE}"), &[]),
            );
        }
    }

    #[test]
    fn split_keeps_seven_bits() {
        for t in [1.0 / std::f64::consts::TAU, 0.1234567, 3.7e-7, 1.0, 0.75] {
            let (hi, lo) = split7(t);
            let m = f64::from(hi).to_bits() & ((1u64 << 52) - 1);
            assert_eq!(
                m & ((1u64 << 46) - 1),
                0,
                "{t}: hi {hi} has more than 7 bits"
            );
            assert!((f64::from(lo)).abs() <= t / 128.0);
            assert!((f64::from(hi) + f64::from(lo) - t).abs() <= t * 1e-9);
        }
    }

    #[test]
    fn reference_modes() {
        // One head of 4 at position 1, base 1: every angle is 1 radian.
        let x = [1.0, 0.0, 0.0, 1.0];
        let (s, c) = 1f64.sin_cos();
        let n = rope_ref(&x, 1, 1, 1, &Rope::new(RopeMode::Normal, 4, 1.0));
        assert!((n[0] - c).abs() < 1e-15 && (n[1] - s).abs() < 1e-15);
        assert!((n[2] + s).abs() < 1e-15 && (n[3] - c).abs() < 1e-15);
        let x = [1.0, 0.0, 0.0, 1.0];
        let ne = rope_ref(&x, 1, 1, 1, &Rope::new(RopeMode::Neox, 4, 1.0));
        // Pairs (0, 2) and (1, 3).
        assert!((ne[0] - c).abs() < 1e-15 && (ne[2] - s).abs() < 1e-15);
        assert!((ne[1] + s).abs() < 1e-15 && (ne[3] - c).abs() < 1e-15);
    }
}
