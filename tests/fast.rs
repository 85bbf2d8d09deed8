//! `fast` precision's kernels against plain CPU references, every adapter, tier and family,
//! with and without `dot4I8Packed`:
//! - the 8-bit quantization of x: d = max|x| / 127 and q = round(x / d) as ggml's q8_1, and the
//!   per-piece sums exactly d·Σq;
//! - every integer matvec against the f64 product of the CPU-dequantized weights with the GPU's
//!   own quantized x, within the f32 rounding such a kernel can make. Quantization error is
//!   therefore not hidden in the tolerance: using f32 x instead of the quantized x would fail;
//! - formats without an integer kernel keep their exact result;
//! - the fused gate+up x8 kernel equals the x8 matvec followed by the activation.
//!
//! How close `fast` stays to exact on a real model is tested in `tests/fast_model.rs`.

mod common;

use wisp::gpu::{Encoder, Gpu, GpuWeight};
use wisp::ops::matvec::{self, Input, X8};
use wisp::ops::{cpu, synth};
use wisp::quant::{self, GgmlType};

fn xs(n: usize, seed: u64) -> Vec<f32> {
    let mut r = synth::Rng(seed);
    // A few large values, so pieces have different scales.
    (0..n)
        .map(|i| r.unit() * if i % 13 == 0 { 8.0 } else { 1.0 })
        .collect()
}

fn ks(ty: GgmlType) -> [u64; 2] {
    match ty.geometry().map(|g| g.block_elems) {
        Some(256) => [768, 2816],
        _ => [96, 352],
    }
}

/// Checks the GPU's quantization of `x` and returns x̂ = d·q per value in f64.
fn check_quantized(x: &[f32], q: &[u8], s: &[f32], f: &mut Vec<String>, what: &str) -> Vec<f64> {
    let mut xhat = Vec::with_capacity(x.len());
    for (p, piece) in x.chunks(32).enumerate() {
        let amax = piece.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = s[4 * p];
        // WGSL's f32 division is within 2.5 ulp.
        let d_cpu = amax / 127.0;
        if (d - d_cpu).abs() > 3.0 * f32::EPSILON * d_cpu {
            f.push(format!("{what} piece {p}: d {d}, CPU {d_cpu}"));
            return xhat;
        }
        let (mut lo, mut hi) = (0i32, 0i32);
        for (j, &v) in piece.iter().enumerate() {
            let qj = q[32 * p + j] as i8;
            // round(x / d): within half a step, up to the division's rounding.
            let ideal = f64::from(v) / f64::from(d);
            if d > 0.0 && (f64::from(qj) - ideal).abs() > 0.5 + 1e-5 {
                f.push(format!(
                    "{what} x[{}] = {v}: q {qj}, x/d {ideal}",
                    32 * p + j
                ));
                return xhat;
            }
            if j < 16 {
                lo += i32::from(qj);
            } else {
                hi += i32::from(qj);
            }
            xhat.push(f64::from(d) * f64::from(qj));
        }
        let want = [d * lo as f32, d * hi as f32, d * (lo + hi) as f32];
        if s[4 * p + 1..4 * p + 4] != want {
            f.push(format!(
                "{what} piece {p}: sums {:?}, want {want:?}",
                &s[4 * p + 1..4 * p + 4]
            ));
        }
    }
    xhat
}

/// |gpu − Σ w·x̂| against the rounding an integer-dot kernel makes: per 32-value piece a few
/// f32 products and one add of terms no larger than Σ (|w| + 2·M)·|x̂|, where M bounds the
/// piece's offset or minimum (max |w| plus the spread of w), summed over k/32 pieces.
fn x8_error_ratio(w: &[f32], k: usize, xhat: &[f64], gpu: &[f32]) -> f64 {
    let u = 2f64.powi(-24);
    let n = (k / 32 + 8) as f64;
    let gamma = n * u / (1.0 - n * u);
    let mut worst = 0f64;
    for (r, &g) in gpu.iter().enumerate() {
        let row = &w[r * k..(r + 1) * k];
        let (mut exact, mut mag) = (0f64, 0f64);
        for (piece, xp) in row.chunks(32).zip(xhat.chunks(32)) {
            let (mn, mx) = piece.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| {
                (a.min(f64::from(v)), b.max(f64::from(v)))
            });
            let m = mn.abs().max(mx.abs()) + (mx - mn);
            for (&wv, &xv) in piece.iter().zip(xp) {
                exact += f64::from(wv) * xv;
                mag += (f64::from(wv).abs() + 2.0 * m) * xv.abs();
            }
        }
        let bound = gamma * mag + f64::from(f32::MIN_POSITIVE);
        let e = if g.is_finite() {
            (f64::from(g) - exact).abs() / bound
        } else {
            f64::INFINITY
        };
        worst = worst.max(e);
    }
    worst
}

fn check_fast_matvec(gpu: &Gpu, ty: GgmlType, rows: u64, k: u64, seed: u64) -> Vec<String> {
    let mut f = Vec::new();
    let what = format!("{ty} {rows}x{k}");
    let data = synth::random_weight(ty, rows, k, seed);
    let x = xs(k as usize, seed ^ 0x5a5a);
    let w = match GpuWeight::upload(gpu, "t", ty, k, rows, &data) {
        Ok(w) => w,
        Err(e) => return vec![format!("{what}: upload: {e}")],
    };
    let xb = gpu.storage_from("x", &x);
    let q = X8::new(gpu, k as u32);
    let yb = gpu.storage("y", rows * 4);
    let mut enc = Encoder::new(gpu);
    let r = pollster::block_on(async {
        matvec::encode_quantize_x8(gpu, &mut enc, &xb, k as u32, &q).await?;
        matvec::encode_input(gpu, &mut enc, &w, Input::X8 { x: &xb, q: &q }, &yb).await
    });
    enc.submit();
    if let Err(e) = r {
        return vec![format!("{what}: {e}")];
    }
    let y = pollster::block_on(gpu.read_f32(&yb, rows as usize)).expect("read y");
    if !ty.has_x8_kernel() {
        // Exact kernels: within the f32 bound of the exact product.
        let reference =
            cpu::dot_reference(ty, &data, rows as usize, k as usize, &x, 1).expect("reference");
        let ratio = reference.error_ratio(&y);
        if ratio > 1.0 || ratio.is_nan() {
            f.push(format!(
                "{what} (exact fallback): error {ratio:.3} × the f32 bound"
            ));
        }
        return f;
    }
    let qb = pollster::block_on(gpu.read_bytes(&q.q, k)).expect("read q");
    let sb = pollster::block_on(gpu.read_f32(&q.s, (k / 32 * 4) as usize)).expect("read s");
    let xhat = check_quantized(&x, &qb, &sb, &mut f, &what);
    if !f.is_empty() {
        return f;
    }
    let wf = quant::dequantize_vec(ty, &data, (rows * k) as usize).expect("dequantize");
    let ratio = x8_error_ratio(&wf, k as usize, &xhat, &y);
    if ratio > 1.0 || ratio.is_nan() {
        f.push(format!("{what}: error {ratio:.3} × the x8 rounding bound"));
    }
    f
}

fn with_dot4(gpu: &mut Gpu, mut f: impl FnMut(&Gpu, &str) -> Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for dot4 in [true, false] {
        gpu.set_dot4(dot4)
            .expect("natively naga always has dot4I8Packed");
        out.extend(
            f(gpu, &format!("dot4 {dot4}"))
                .into_iter()
                .map(|m| format!("[dot4 {dot4}] {m}")),
        );
    }
    out
}

#[test]
fn fast_matvec_every_format() {
    common::for_every_config(|gpu, _| {
        with_dot4(gpu, |gpu, _| {
            let mut f = Vec::new();
            for ty in GgmlType::SUPPORTED {
                for (rows, k) in [(1u64, ks(ty)[0]), (67, ks(ty)[0]), (13, ks(ty)[1])] {
                    f.extend(check_fast_matvec(gpu, ty, rows, k, rows * 17 + k));
                }
            }
            f
        })
    });
}

/// The fused gate+up x8 kernel computes per row the same sums as the x8 matvec, then the same
/// activation: bit-identical up to a compiler's contraction choices.
#[test]
fn fast_gate_up_matches_the_unfused_fast_ops() {
    common::for_every_config(|gpu, _| {
        with_dot4(gpu, |gpu, _| {
            let mut f = Vec::new();
            for ty in GgmlType::SUPPORTED
                .into_iter()
                .filter(|t| t.has_x8_kernel())
            {
                // 40 rows, a multiple of 8 as every model's FFN width is: the fused kernel takes
                // it in both row layouts (kernels.rs covers the unfused fallback).
                let (n, k) = (40u64, ks(ty)[0]);
                let data = synth::random_weight(ty, 2 * n, k, n + k);
                let x = xs(k as usize, k ^ 0x77);
                let w = GpuWeight::upload(gpu, "gate+up", ty, k, 2 * n, &data).expect("upload");
                for gelu in [false, true] {
                    let xb = gpu.storage_from("x", &x);
                    let q = X8::new(gpu, k as u32);
                    let (gu, y_unfused, y_fused) = (
                        gpu.storage("gu", 2 * n * 4),
                        gpu.storage("y", n * 4),
                        gpu.storage("y", n * 4),
                    );
                    let input = Input::X8 { x: &xb, q: &q };
                    let mut enc = Encoder::new(gpu);
                    let r = pollster::block_on(async {
                        matvec::encode_quantize_x8(gpu, &mut enc, &xb, k as u32, &q).await?;
                        matvec::encode_input(gpu, &mut enc, &w, input, &gu).await?;
                        wisp::ops::act::encode_glu_halves(
                            gpu, &mut enc, &gu, &y_unfused, 1, n as u32, gelu,
                        )
                        .await?;
                        matvec::encode_glu(gpu, &mut enc, &w, input, &y_fused, gelu).await
                    });
                    enc.submit();
                    if !matches!(r, Ok(true)) {
                        f.push(format!("{ty} gelu {gelu}: {r:?}"));
                        continue;
                    }
                    let a = pollster::block_on(gpu.read_f32(&y_unfused, n as usize)).expect("read");
                    let b = pollster::block_on(gpu.read_f32(&y_fused, n as usize)).expect("read");
                    f.extend(common::same_as_unfused(&a, &b, &format!("{ty} gelu {gelu}")).1);
                }
            }
            f
        })
    });
}
