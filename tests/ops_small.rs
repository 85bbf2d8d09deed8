//! The small ops of a transformer forward pass (RMS norm, RoPE, GeGLU/SwiGLU, add, scale,
//! argmax) against their f64 CPU references, on every adapter and every tier it allows, with
//! awkward shapes. Tolerances are the ops' own f32 error bounds (`norm::rms_norm_rel_bound`,
//! `rope::rope_abs_bound`, `act::geglu_bound`, `act::swiglu_bound`, documented there); add and
//! scale are correctly rounded in WGSL and must match f32 bit for bit; argmax is exact.
//! Each check reports its largest error as a fraction of the bound (`--nocapture`).

mod common;

use wisp::gpu::{Gpu, GpuError};
use wisp::ops::matvec::{self, X8};
use wisp::ops::rope::{Rope, RopeMode};
use wisp::ops::synth::Rng;
use wisp::ops::{act, argmax, norm, rope};

/// Runs `f` on every adapter at every tier it supports; panics with every failure at the end.
fn each_config(mut f: impl FnMut(&Gpu, &str) -> Vec<String>) {
    let mut failures = Vec::new();
    for mut gpu in common::devices() {
        let max = gpu.caps.tier;
        for tier in common::tiers(&gpu) {
            gpu.set_tier(tier).expect("tier within the device's");
            let label = format!("{} {tier:?}", gpu.caps.adapter.name);
            failures.extend(
                f(&gpu, &label)
                    .into_iter()
                    .map(|m| format!("[{label}] {m}")),
            );
        }
        gpu.set_tier(max).expect("restore tier");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

fn randoms(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..n).map(|_| r.unit() * scale).collect()
}

/// Compares element by element: `|got − want| ≤ bound(i)`; returns failures and the largest
/// `error / bound`.
fn compare(
    what: &str,
    got: &[f32],
    want: &[f64],
    bound: impl Fn(usize) -> f64,
) -> (Vec<String>, f64) {
    let mut bad = Vec::new();
    let mut worst = 0.0f64;
    if got.len() != want.len() {
        return (
            vec![format!(
                "{what}: {} values, expected {}",
                got.len(),
                want.len()
            )],
            0.0,
        );
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        let b = bound(i);
        if b > 0.0 {
            worst = worst.max(err / b);
        }
        // A NaN error fails too.
        let within = err <= b;
        if !within {
            if bad.len() < 5 {
                bad.push(format!(
                    "{what}: [{i}] got {g:e}, want {w:e}, error {err:e} > bound {b:e}"
                ));
            } else if bad.len() == 5 {
                bad.push(format!("{what}: more mismatches"));
            }
        }
    }
    (bad, worst)
}

/// Reads `len` values of `buf` back (after the caller's submit).
fn read(gpu: &Gpu, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
    block(gpu.read_f32(buf, len))
}

// ---------------------------------------------------------------------------------------------
// RMS norm

#[test]
fn rms_norm_matches_reference() {
    // (rows, n): one token of Gemma 3 270M (640) and SmolLM2 (576), 7 tokens, QK-norm over
    // 7 tokens × 4 heads of 256, the FFN width, n = 1, and odd everything.
    let shapes = [
        (1, 640),
        (7, 640),
        (1, 576),
        (28, 256),
        (3, 2048),
        (1, 1),
        (5, 7),
        (9, 65),
    ];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let mut worst = 0.0f64;
        for (s, &(rows, n)) in shapes.iter().enumerate() {
            let mut x = randoms(rows * n, 4.0, 11 + s as u64);
            // Rows at very different scales: tiny, large, and all zero.
            if rows >= 3 {
                x[..n].iter_mut().for_each(|v| *v *= 1e-3);
                x[n..2 * n].iter_mut().for_each(|v| *v *= 1e3);
                x[2 * n..3 * n].iter_mut().for_each(|v| *v = 0.0);
            }
            let w: Vec<f32> = randoms(n, 1.0, 99 + s as u64)
                .iter()
                .map(|v| 1.0 + v)
                .collect();
            let bound = norm::rms_norm_rel_bound(n);
            for with_w in [false, true] {
                let wref = with_w.then_some(&w[..]);
                let want = norm::rms_norm_ref(&x, wref, n, 1e-6);
                let what = format!("rms_norm [{rows}][{n}] w={with_w}");
                // Out of place through run_rms_norm.
                match block(norm::run_rms_norm(gpu, &x, wref, n as u32, 1e-6)) {
                    Ok(got) => {
                        let (f, r) = compare(&what, &got, &want, |i| want[i].abs() * bound);
                        fails.extend(f);
                        worst = worst.max(r);
                    }
                    Err(e) => fails.push(format!("{what}: {e}")),
                }
                // In place.
                let xb = gpu.storage_from("x", &x);
                let wb = gpu.storage_from("w", &w);
                let mut enc = wisp::gpu::Encoder::new(gpu);
                let r = block(norm::encode_rms_norm(
                    gpu,
                    &mut enc,
                    &xb,
                    with_w.then_some(&wb),
                    &xb,
                    rows as u32,
                    n as u32,
                    1e-6,
                ));
                enc.submit();
                match r.and_then(|_| read(gpu, &xb, x.len())) {
                    Ok(got) => {
                        let what = format!("{what} in place");
                        let (f, r) = compare(&what, &got, &want, |i| want[i].abs() * bound);
                        fails.extend(f);
                        worst = worst.max(r);
                    }
                    Err(e) => fails.push(format!("{what} in place: {e}")),
                }
            }
        }
        eprintln!("rms_norm: largest error {worst:.3} of the bound");
        fails
    });
}

// ---------------------------------------------------------------------------------------------
// RoPE

#[test]
fn rope_matches_reference() {
    // (mode, head_dim, n_rot, freq_base, freq_scale, heads, tokens, pos0)
    let cases = [
        // SmolLM2 (llama: normal), one token at 0 and 7 tokens reaching position 4096.
        (RopeMode::Normal, 64, 64, 100_000.0, 1.0, 9, 1, 0),
        (RopeMode::Normal, 64, 64, 10_000.0, 1.0, 3, 7, 4090),
        // Gemma 3: neox, head_dim 256, global (1e6) and local (1e4) bases.
        (RopeMode::Neox, 256, 256, 1_000_000.0, 1.0, 4, 7, 4090),
        (RopeMode::Neox, 256, 256, 10_000.0, 1.0, 1, 1, 4096),
        (RopeMode::Neox, 256, 256, 10_000.0, 1.0, 4, 1, 0),
        // Qwen: neox, head_dim 128.
        (RopeMode::Neox, 128, 128, 1_000_000.0, 1.0, 2, 7, 1),
        // Partial rotation, linear scaling, odd head count, and the last exact positions.
        (RopeMode::Neox, 64, 32, 10_000.0, 0.125, 3, 5, 100),
        (RopeMode::Normal, 80, 48, 500_000.0, 1.0, 5, 7, 131_065),
        (RopeMode::Neox, 256, 256, 1_000_000.0, 1.0, 1, 2, 131_070),
    ];
    // Frequency factors (Llama 3.1's shape: 1 for high frequencies, up to 8 for low ones),
    // YaRN (factor 4 over an original context of 64: the ramp runs over pairs 0..=9) and
    // attn_factor, alone and together, in both pairings.
    let factors = |n: u32| -> Option<std::sync::Arc<[f32]>> {
        Some(
            (0..n)
                .map(|i| 1.0 + 7.0 * (i as f32 / n as f32).powi(2))
                .collect(),
        )
    };
    let yarn = Some(rope::Yarn {
        orig_ctx: 64,
        beta_fast: 32.0,
        beta_slow: 1.0,
    });
    let extra = [
        (
            RopeMode::Normal,
            64,
            64,
            500_000.0,
            1.0,
            None,
            1.0,
            factors(32),
            2,
            5,
            300,
        ),
        (
            RopeMode::Neox,
            96,
            96,
            10_000.0,
            1.0,
            None,
            1.19,
            factors(48),
            3,
            3,
            5000,
        ),
        (
            RopeMode::Neox,
            64,
            64,
            10_000.0,
            0.25,
            yarn,
            1.0,
            None,
            2,
            4,
            250,
        ),
        (
            RopeMode::Normal,
            64,
            48,
            1_000_000.0,
            0.25,
            yarn,
            1.5,
            factors(24),
            3,
            2,
            9000,
        ),
    ];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let mut worst = 0.0f64;
        let ropes = cases
            .iter()
            .map(
                |&(mode, head_dim, n_rot, base, scale, heads, tokens, pos0)| {
                    let rope = Rope {
                        n_rot,
                        freq_scale: scale,
                        ..Rope::new(mode, head_dim, base)
                    };
                    (rope, heads, tokens, pos0)
                },
            )
            .chain(extra.iter().map(
                |(mode, head_dim, n_rot, base, scale, yarn, attn, f, heads, tokens, pos0)| {
                    let rope = Rope {
                        n_rot: *n_rot,
                        freq_scale: *scale,
                        yarn: *yarn,
                        attn_factor: *attn,
                        factors: f.clone(),
                        ..Rope::new(*mode, *head_dim, *base)
                    };
                    (rope, *heads, *tokens, *pos0)
                },
            ));
        for (c, (rope, heads, tokens, pos0)) in ropes.enumerate() {
            let (mode, head_dim, n_rot, base) =
                (rope.mode, rope.head_dim, rope.n_rot, rope.freq_base);
            let len = (tokens * heads * head_dim) as usize;
            let x = randoms(len, 3.0, 1000 + c as u64);
            let want = rope::rope_ref(&x, tokens, heads, pos0, &rope);
            // Bound per element: its pair's (|a| + |b|) times the angle/trig/rotation bound;
            // dimensions past n_rot must come back unchanged.
            let half = (n_rot / 2) as usize;
            let bound = |j: usize| {
                let row = j / head_dim as usize;
                let d = j % head_dim as usize;
                if d >= n_rot as usize {
                    return 0.0;
                }
                let (i, partner) = match mode {
                    RopeMode::Normal => (d / 2, d ^ 1),
                    RopeMode::Neox => (d % half, if d < half { d + half } else { d - half }),
                };
                let pos = pos0 + (row / heads as usize) as u32;
                let base = row * head_dim as usize;
                let mag = f64::from(x[base + d].abs()) + f64::from(x[base + partner].abs());
                mag * rope::rope_abs_bound(&rope, pos, i as u32)
            };
            let what = format!(
                "rope {mode:?} [{tokens}][{heads}][{head_dim}] n_rot {n_rot} base {base} pos0 {pos0} \
                 scale {} yarn {:?} attn_factor {} factors {}",
                rope.freq_scale,
                rope.yarn,
                rope.attn_factor,
                rope.factors.is_some()
            );
            match block(rope::run_rope(gpu, &x, tokens, heads, pos0, &rope)) {
                Ok(got) => {
                    let (f, r) = compare(&what, &got, &want, bound);
                    fails.extend(f);
                    worst = worst.max(r);
                }
                Err(e) => fails.push(format!("{what}: {e}")),
            }
        }
        eprintln!("rope: largest error {worst:.3} of the bound");
        fails
    });
}

// ---------------------------------------------------------------------------------------------
// Activations, add, scale

/// Gates: random over [−12, 12] plus the edges of the kernel's clamps and far beyond.
fn gates(len: usize, seed: u64) -> Vec<f32> {
    let mut g = randoms(len, 12.0, seed);
    let special = [
        0.0, -0.0, 9.0, -9.0, 9.0001, -9.0001, 10.0, -10.0, 20.0, -20.0, 87.0, -87.0, 88.7, -88.7,
        100.0, -100.0, 1e4, -1e4, 1e30, -1e30, 1e-30, -1e-30,
    ];
    for (v, s) in g.iter_mut().zip(special) {
        *v = s;
    }
    g
}

#[test]
fn activations_match_reference() {
    let shapes = [(1, 640), (7, 2048), (1, 1), (3, 7)];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let (mut wg, mut ws) = (0.0f64, 0.0f64);
        for (s, &(rows, n)) in shapes.iter().enumerate() {
            let len = rows * n;
            let gate = gates(len, 500 + s as u64);
            let up = randoms(len, 2.0, 600 + s as u64);
            let what = format!("[{rows}][{n}]");
            // Both through run_* (out of place) and in place over gate.
            for inplace in [false, true] {
                for geglu in [true, false] {
                    let name = if geglu { "geglu" } else { "swiglu" };
                    let want = if geglu {
                        act::geglu_ref(&gate, &up)
                    } else {
                        act::swiglu_ref(&gate, &up)
                    };
                    let got = if inplace {
                        let gb = gpu.storage_from("gate", &gate);
                        let ub = gpu.storage_from("up", &up);
                        let mut enc = wisp::gpu::Encoder::new(gpu);
                        let r = if geglu {
                            block(act::encode_geglu(
                                gpu,
                                &mut enc,
                                &gb,
                                &ub,
                                &gb,
                                rows as u32,
                                n as u32,
                            ))
                        } else {
                            block(act::encode_swiglu(
                                gpu,
                                &mut enc,
                                &gb,
                                &ub,
                                &gb,
                                rows as u32,
                                n as u32,
                            ))
                        };
                        enc.submit();
                        r.and_then(|_| read(gpu, &gb, len))
                    } else if geglu {
                        block(act::run_geglu(gpu, &gate, &up))
                    } else {
                        block(act::run_swiglu(gpu, &gate, &up))
                    };
                    let what = format!("{name} {what} in_place={inplace}");
                    match got {
                        Ok(got) => {
                            let (f, r) = compare(&what, &got, &want, |i| {
                                let (rel, abs) = if geglu {
                                    act::geglu_bound(gate[i], up[i])
                                } else {
                                    act::swiglu_bound(gate[i], up[i])
                                };
                                want[i].abs() * rel + abs
                            });
                            fails.extend(f);
                            let w = if geglu { &mut wg } else { &mut ws };
                            *w = w.max(r);
                        }
                        Err(e) => fails.push(format!("{what}: {e}")),
                    }
                }
            }
        }
        eprintln!("geglu: largest error {wg:.3} of the bound; swiglu: {ws:.3}");
        fails
    });
}

/// Bit-for-bit comparison with f32 arithmetic (WGSL `+` and `*` are correctly rounded; the
/// inputs avoid subnormals, which WGSL may flush).
fn exact(what: &str, got: &[f32], want: &[f64]) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() != (w as f32).to_bits() && bad.len() < 5 {
            bad.push(format!("{what}: [{i}] got {g:e}, want {:e}", w as f32));
        }
    }
    if got.len() != want.len() {
        bad.push(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    bad
}

#[test]
fn add_and_scale_are_exact() {
    let shapes = [(1, 640), (7, 640), (1, 1), (5, 2049)];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        for (s, &(rows, n)) in shapes.iter().enumerate() {
            let len = rows * n;
            let a = randoms(len, 100.0, 700 + s as u64);
            let b = randoms(len, 0.01, 800 + s as u64);
            let (r32, n32) = (rows as u32, n as u32);
            let sum = act::add_ref(&a, &b);
            let what = format!("[{rows}][{n}]");
            match block(act::run_add(gpu, &a, &b)) {
                Ok(g) => fails.extend(exact(&format!("add {what}"), &g, &sum)),
                Err(e) => fails.push(format!("add {what}: {e}")),
            }
            // A bias row broadcast over every row (Qwen 2's q/k/v biases), out of place and in place.
            let bias = randoms(n, 1.0, 900 + s as u64);
            let want = act::add_bias_ref(&a, &bias);
            match block(act::run_add_bias(gpu, &a, &bias)) {
                Ok(g) => fails.extend(exact(&format!("add_bias {what}"), &g, &want)),
                Err(e) => fails.push(format!("add_bias {what}: {e}")),
            }
            let ab = gpu.storage_from("a", &a);
            let bb = gpu.storage_from("bias", &bias);
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = block(act::encode_add_bias(gpu, &mut enc, &ab, &bb, &ab, r32, n32));
            enc.submit();
            match r.and_then(|_| read(gpu, &ab, len)) {
                Ok(g) => fails.extend(exact(&format!("add_bias in place {what}"), &g, &want)),
                Err(e) => fails.push(format!("add_bias in place {what}: {e}")),
            }
            // sqrt(n_embd) for Gemma's embeddings; 1/16 for an attention scale.
            for k in [25.298_221f32, 0.0625, -3.0] {
                let want = act::scale_ref(&a, k);
                match block(act::run_scale(gpu, &a, k)) {
                    Ok(g) => fails.extend(exact(&format!("scale {k} {what}"), &g, &want)),
                    Err(e) => fails.push(format!("scale {what}: {e}")),
                }
            }
            // In place: y = a, y = b, and a = b = y (which is 2a).
            for case in ["y=a", "y=b", "a=b=y", "scale y=x"] {
                let ab = gpu.storage_from("a", &a);
                let bb = gpu.storage_from("b", &b);
                let mut enc = wisp::gpu::Encoder::new(gpu);
                let (r, out, want) = match case {
                    "y=a" => (
                        block(act::encode_add(gpu, &mut enc, &ab, &bb, &ab, r32, n32)),
                        &ab,
                        sum.clone(),
                    ),
                    "y=b" => (
                        block(act::encode_add(gpu, &mut enc, &ab, &bb, &bb, r32, n32)),
                        &bb,
                        sum.clone(),
                    ),
                    "a=b=y" => (
                        block(act::encode_add(gpu, &mut enc, &ab, &ab, &ab, r32, n32)),
                        &ab,
                        act::add_ref(&a, &a),
                    ),
                    _ => (
                        block(act::encode_scale(gpu, &mut enc, &ab, &ab, r32, n32, 0.5)),
                        &ab,
                        act::scale_ref(&a, 0.5),
                    ),
                };
                enc.submit();
                match r.and_then(|_| read(gpu, out, len)) {
                    Ok(g) => fails.extend(exact(&format!("add {case} {what}"), &g, &want)),
                    Err(e) => fails.push(format!("add {case} {what}: {e}")),
                }
            }
        }
        fails
    });
}

// ---------------------------------------------------------------------------------------------
// argmax

#[test]
fn argmax_matches_reference() {
    const VOCAB: usize = 262_144;
    let mut cases: Vec<(String, Vec<f32>)> = Vec::new();
    let logits = randoms(VOCAB, 20.0, 4242);
    cases.push(("random 262144".into(), logits.clone()));
    // Ties within one invocation (777 and 777 + 3·16384 share one), across invocations and
    // across workgroups: the lowest index must win.
    let mut t = logits.clone();
    for &i in &[262_143, 200_000, 70_001, 49_929, 16_385, 777] {
        t[i] = 50.0;
    }
    cases.push(("ties".into(), t));
    // The maximum at the last index, then at index 0.
    let mut t = logits.clone();
    t[VOCAB - 1] = 30.0;
    cases.push(("max last".into(), t.clone()));
    t[0] = 30.0;
    cases.push(("tie first and last".into(), t));
    // All negative, with a NaN (of either sign) in front and around the maximum.
    let mut t: Vec<f32> = logits.iter().map(|v| -v.abs() - 1.0).collect();
    t[3] = f32::NAN;
    t[4] = -f32::NAN;
    t[123_456] = -0.5;
    t[123_457] = f32::from_bits(0x7fff_ffff);
    cases.push(("negatives and NaNs".into(), t));
    // Infinities.
    let mut t = logits.clone();
    t[5] = f32::INFINITY;
    t[6] = f32::INFINITY;
    t[2] = f32::NAN;
    cases.push(("+inf twice".into(), t));
    cases.push(("-inf only".into(), vec![f32::NEG_INFINITY; 1000]));
    // Signed zeros compare equal: the first wins.
    cases.push(("-0 then +0".into(), vec![-1.0, -0.0, 0.0, -2.0]));
    cases.push(("+0 then -0".into(), vec![-1.0, 0.0, -0.0, -2.0]));
    cases.push(("all NaN".into(), vec![f32::NAN; 70]));
    cases.push(("n = 1".into(), vec![-7.5]));
    // Lengths around one workgroup and around the first pass's total width (256 × 64).
    for n in [63usize, 64, 65, 16_383, 16_384, 16_385, 100_003] {
        let mut t = randoms(n, 1.0, n as u64);
        t[n / 2] = 2.0;
        t[n - 1] = 2.0;
        cases.push((format!("n = {n}"), t));
    }
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        for (what, x) in &cases {
            let (wi, wv) = argmax::argmax_ref(x);
            match block(argmax::run_argmax(gpu, x)) {
                Ok((i, v)) => {
                    let same_value = v.to_bits() == wv.to_bits() || (v.is_nan() && wv.is_nan());
                    if i != wi || !same_value {
                        fails.push(format!(
                            "argmax {what}: got ({i}, {v:e}), want ({wi}, {wv:e})"
                        ));
                    }
                }
                Err(e) => fails.push(format!("argmax {what}: {e}")),
            }
        }
        fails
    });
}

/// The masked argmax (structured output's greedy pick): the reference over the allowed indices
/// only, for masks that allow the global maximum, exclude it, allow one index, none, or a
/// random half, with a tie among the allowed.
#[test]
fn masked_argmax_matches_reference() {
    const VOCAB: usize = 262_144;
    let logits = randoms(VOCAB, 20.0, 777);
    let words = VOCAB / 32;
    let (top, _) = argmax::argmax_ref(&logits);
    let mut r = Rng(99);
    let half: Vec<u32> = (0..words).map(|_| r.next_u64() as u32).collect();
    let mut no_top = vec![u32::MAX; words];
    no_top[top as usize / 32] &= !(1 << (top % 32));
    let mut one = vec![0u32; words];
    one[123_457 / 32] |= 1 << (123_457 % 32);
    let mut tie = logits.clone();
    tie[5] = 99.0;
    tie[200_001] = 99.0;
    tie[7] = 100.0;
    let mut tie_mask = vec![u32::MAX; words];
    tie_mask[0] &= !(1 << 7);
    let cases: Vec<(&str, &[f32], Vec<u32>)> = vec![
        ("all allowed", &logits, vec![u32::MAX; words]),
        ("random half", &logits, half),
        ("maximum excluded", &logits, no_top),
        ("one allowed", &logits, one),
        ("none allowed", &logits, vec![0; words]),
        ("tie among the allowed", &tie, tie_mask),
    ];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        for (what, x, mask) in &cases {
            let allowed: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if mask[i / 32] >> (i % 32) & 1 == 1 {
                        v
                    } else {
                        f32::NAN
                    }
                })
                .collect();
            let (wi, _) = argmax::argmax_ref(&allowed);
            match block(argmax::run_argmax_masked(gpu, x, mask)) {
                Ok((i, _)) if i == wi => {}
                Ok((i, v)) => {
                    fails.push(format!("masked argmax {what}: got ({i}, {v}), want {wi}"))
                }
                Err(e) => fails.push(format!("masked argmax {what}: {e}")),
            }
        }
        fails
    });
}

// ---------------------------------------------------------------------------------------------
// Bad sizes and settings: a named error, never a panic, nothing recorded.

fn expect_shape(what: &str, r: Result<(), GpuError>, op: &str) -> Option<String> {
    match r {
        Err(GpuError::Shape { tensor, detail }) if tensor.contains(op) => {
            eprintln!("{what}: {tensor}: {detail}");
            None
        }
        Err(e) => Some(format!(
            "{what}: expected a shape error naming {op}, got {e}"
        )),
        Ok(()) => Some(format!("{what}: accepted")),
    }
}

#[test]
fn bad_shapes_are_errors() {
    let gpu = common::devices().remove(0);
    let g = &gpu;
    let small = gpu.storage("small", 64 * 4);
    let big = gpu.storage("big", 4096 * 4);
    let mut enc = wisp::gpu::Encoder::new(&gpu);
    let e = &mut enc;
    let rope = Rope::new(RopeMode::Neox, 256, 1e6);
    let odd = Rope {
        n_rot: 31,
        ..Rope::new(RopeMode::Normal, 64, 1e4)
    };
    let checks = [
        (
            "rms_norm x too small",
            block(norm::encode_rms_norm(
                g, e, &small, None, &big, 2, 640, 1e-6,
            )),
            "rms_norm",
        ),
        (
            "rms_norm w too small",
            block(norm::encode_rms_norm(
                g,
                e,
                &big,
                Some(&small),
                &big,
                1,
                640,
                1e-6,
            )),
            "rms_norm",
        ),
        (
            "rms_norm n = 0",
            block(norm::encode_rms_norm(g, e, &big, None, &big, 1, 0, 1e-6)),
            "rms_norm",
        ),
        (
            "rms_norm w = y",
            block(norm::encode_rms_norm(
                g,
                e,
                &big,
                Some(&small),
                &small,
                1,
                16,
                1e-6,
            )),
            "rms_norm",
        ),
        (
            "rope x too small",
            block(rope::encode_rope(g, e, &small, 1, 1, 0, &rope)),
            "rope",
        ),
        (
            "rope odd n_rot",
            block(rope::encode_rope(g, e, &big, 1, 1, 0, &odd)),
            "rope",
        ),
        (
            "rope past the last position",
            block(rope::encode_rope(
                g,
                e,
                &big,
                2,
                1,
                rope::ROPE_MAX_POS - 1,
                &rope,
            )),
            "rope",
        ),
        (
            "rope no tokens",
            block(rope::encode_rope(g, e, &big, 0, 1, 0, &rope)),
            "rope",
        ),
        (
            "geglu up too small",
            block(act::encode_geglu(g, e, &big, &small, &big, 1, 640)),
            "geglu",
        ),
        (
            "swiglu out = up",
            block(act::encode_swiglu(g, e, &big, &small, &small, 1, 16)),
            "swiglu",
        ),
        (
            "add y too small",
            block(act::encode_add(g, e, &big, &big, &small, 7, 640)),
            "add",
        ),
        (
            "add with a bias row",
            block(act::encode_add(g, e, &big, &small, &big, 2, 64)),
            "add",
        ),
        (
            "add_bias bias too small",
            block(act::encode_add_bias(g, e, &big, &small, &big, 2, 65)),
            "add_bias",
        ),
        (
            "scale rows = 0",
            block(act::encode_scale(g, e, &big, &big, 0, 640, 1.0)),
            "scale",
        ),
        (
            "argmax n = 0",
            block(argmax::encode_argmax(g, e, &big, 0, &big)),
            "argmax",
        ),
        (
            "argmax x too small",
            block(argmax::encode_argmax(g, e, &small, 65, &big)),
            "argmax",
        ),
        (
            "argmax out too small",
            block(argmax::encode_argmax(g, e, &big, 64, &small)),
            "argmax",
        ),
    ];
    let fails: Vec<String> = checks
        .into_iter()
        .filter_map(|(what, r, op)| expect_shape(what, r, op))
        .collect();
    // Nothing was recorded: the (empty) encoder still submits cleanly.
    enc.submit();
    gpu.check("empty submit").expect("no validation errors");
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Soft-capping `c·tanh(x/c)` (Gemma 2's final logits and attention scores) against f64, over
/// both branches of the shader's tanh (|x/c| below and above 0.55), tiny and huge inputs.
/// Bound: `x/c` rounds by u (moving the result by at most u·|x|, tanh' ≤ 1), the series or the
/// exp form is within 6u of tanh (relative), the final product rounds by u:
/// `u·|x| + 7u·|result| + 2⁻¹²⁶`.
#[test]
fn softcap_matches_reference() {
    let u = f64::powi(2.0, -24);
    let mut x = randoms(4000, 80.0, 4242);
    x.extend([0.0, 1e-30, -1e-7, 27.5, 16.5, -16.5, 1e6, -1e30, 3e38]);
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let mut worst = 0.0f64;
        for c in [30.0f32, 50.0, 1.0] {
            let want: Vec<f64> = x.iter().map(|&v| act::softcap_ref(v, c)).collect();
            let bound = |i: usize| {
                u * f64::from(x[i]).abs().min(f64::from(c) * 10.0)
                    + 7.0 * u * want[i].abs()
                    + f64::powi(2.0, -126)
            };
            match block(act::run_softcap(gpu, &x, c)) {
                Ok(g) => {
                    let (f, r) = compare(&format!("softcap {c}"), &g, &want, bound);
                    fails.extend(f);
                    worst = worst.max(r);
                }
                Err(e) => fails.push(format!("softcap {c}: {e}")),
            }
        }
        eprintln!("softcap: largest error {worst:.3} of the bound");
        fails
    });
}

/// The fused residual step (`x += post ? rms_norm(h)·pw : h; h = rms_norm(x)·w`) against the
/// three ops it replaces, run one after the other on the same GPU: the same operations per
/// element, so the results agree to the rounding of the two norms (measured: bit for bit on
/// lavapipe and SwiftShader), and against the f64 reference within the norm bounds.
#[test]
fn residual_norm_matches_the_unfused_ops() {
    let eps = 1e-6f32;
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let mut identical = 0usize;
        let mut total = 0usize;
        for (c, &(rows, n, post)) in [
            (1u32, 640u32, false),
            (1, 640, true),
            (7, 576, true),
            (3, 100, false),
        ]
        .iter()
        .enumerate()
        {
            let len = (rows * n) as usize;
            let x = randoms(len, 2.0, 3000 + c as u64);
            let h = randoms(len, 5.0, 3100 + c as u64);
            let w: Vec<f32> = randoms(n as usize, 0.5, 3200 + c as u64)
                .iter()
                .map(|v| v + 1.0)
                .collect();
            let pw: Vec<f32> = randoms(n as usize, 0.5, 3300 + c as u64)
                .iter()
                .map(|v| v + 1.0)
                .collect();
            let what = format!("[{rows}][{n}] post {post}");
            // Unfused.
            let (xb, hb) = (gpu.storage_from("x", &x), gpu.storage_from("h", &h));
            let (wb, pwb) = (gpu.storage_from("w", &w), gpu.storage_from("pw", &pw));
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = (|| {
                if post {
                    block(norm::encode_rms_norm(
                        gpu,
                        &mut enc,
                        &hb,
                        Some(&pwb),
                        &hb,
                        rows,
                        n,
                        eps,
                    ))?;
                }
                block(act::encode_add(gpu, &mut enc, &xb, &hb, &xb, rows, n))?;
                block(norm::encode_rms_norm(
                    gpu,
                    &mut enc,
                    &xb,
                    Some(&wb),
                    &hb,
                    rows,
                    n,
                    eps,
                ))
            })();
            enc.submit();
            let unfused = r.and_then(|_| Ok((read(gpu, &xb, len)?, read(gpu, &hb, len)?)));
            // Fused; quantizing h for `fast` on the way where rows are whole 32-value pieces.
            let (xf, hf) = (gpu.storage_from("x", &x), gpu.storage_from("h", &h));
            let q8 = n.is_multiple_of(32).then(|| X8::new(gpu, rows * n));
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = block(norm::encode_residual_norm(
                gpu,
                &mut enc,
                &xf,
                &hf,
                post.then_some(&pwb),
                &wb,
                q8.as_ref(),
                rows,
                n,
                eps,
            ));
            enc.submit();
            let fused = r.and_then(|_| Ok((read(gpu, &xf, len)?, read(gpu, &hf, len)?)));
            // Its quantization is quantize_x8's of the h it wrote, bit for bit.
            if let Some(q) = &q8 {
                let expect = X8::new(gpu, rows * n);
                let mut enc = wisp::gpu::Encoder::new(gpu);
                let r = block(matvec::encode_quantize_x8(
                    gpu,
                    &mut enc,
                    &hf,
                    rows * n,
                    &expect,
                ));
                enc.submit();
                let words = (rows * n) as usize / 4;
                let pieces = (rows * n) as usize / 32 * 4;
                let got = r.and_then(|_| {
                    Ok([
                        read(gpu, &q.q, words)?,
                        read(gpu, &expect.q, words)?,
                        read(gpu, &q.s, pieces)?,
                        read(gpu, &expect.s, pieces)?,
                    ])
                });
                match got {
                    Ok([gq, eq, gs, es]) => {
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        if bits(&gq) != bits(&eq) || bits(&gs) != bits(&es) {
                            fails.push(format!("{what}: x8 differs from quantize_x8's"));
                        }
                        if gs.iter().step_by(4).all(|&d| d == 0.0) {
                            fails.push(format!("{what}: x8 scales all zero"));
                        }
                    }
                    Err(e) => fails.push(format!("{what}: x8: {e}")),
                }
            }
            let ((ux, uy), (fx, fy)) = match (unfused, fused) {
                (Ok(u), Ok(f)) => (u, f),
                (u, f) => {
                    fails.push(format!("{what}: {:?} {:?}", u.err(), f.err()));
                    continue;
                }
            };
            // The reference: x' in f64 from the f32 inputs, then its norm.
            let h1 = if post {
                norm::rms_norm_ref(&h, Some(&pw), n as usize, eps)
            } else {
                h.iter().map(|&v| f64::from(v)).collect()
            };
            let xr: Vec<f64> = x.iter().zip(&h1).map(|(&a, b)| f64::from(a) + b).collect();
            let xr32: Vec<f32> = xr.iter().map(|&v| v as f32).collect();
            let yr = norm::rms_norm_ref(&xr32, Some(&w), n as usize, eps);
            let b = norm::rms_norm_rel_bound(n as usize);
            for i in 0..len {
                total += 2;
                identical += usize::from(fx[i].to_bits() == ux[i].to_bits())
                    + usize::from(fy[i].to_bits() == uy[i].to_bits());
                let xe = (f64::from(fx[i]) - xr[i]).abs();
                let xb = b * h1[i].abs() + f64::powi(2.0, -24) * xr[i].abs();
                let ye = (f64::from(fy[i]) - yr[i]).abs();
                // x' carries its error into the second norm, times that element's scale
                // r·w (r of the row); on top of the norm's own bound (doubled for the error of
                // the other x' in the row's mean square).
                let row = i / n as usize * n as usize;
                let ms = xr32[row..row + n as usize]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    / f64::from(n);
                let scale = f64::from(w[i % n as usize]).abs() / (ms + f64::from(eps)).sqrt();
                let yb = scale * xb + 3.0 * b * yr[i].abs() + 1e-30;
                if xe > xb || ye > yb || (fx[i] - ux[i]).abs() > 2.0 * xb as f32 {
                    fails.push(format!(
                        "{what} [{i}]: fused x {} y {}, unfused x {} y {}, reference x {} y {}",
                        fx[i], fy[i], ux[i], uy[i], xr[i], yr[i]
                    ));
                    break;
                }
            }
        }
        eprintln!("residual_norm: {identical} of {total} values bit-identical to the unfused ops");
        fails
    });
}

/// QK-norm and RoPE on q and k in one dispatch against the ops it replaces (per-head rms_norm,
/// then rope on q and on k), run one after the other on the same GPU: identical per element
/// (measured bit for bit on lavapipe and SwiftShader) — with and without the norm, both pairings,
/// partial rotary, YaRN and factors, one token and a prefill chunk. The fused run also stores k
/// and v into a KV cache: bit-identical to `store_kv` of its rotated k and of v.
#[test]
fn qk_rope_matches_the_unfused_ops() {
    use wisp::ops::attention::{self, KvCache};
    use wisp::ops::qk_rope::{encode_qk_rope, KvStore, QkNorm};
    let eps = 1e-6f32;
    let factors: std::sync::Arc<[f32]> = (0..16).map(|i| 1.0 + i as f32 * 0.4).collect();
    let cases = [
        // (mode, head_dim, n_rot, heads, kv heads, tokens, pos0, norm, extras)
        (RopeMode::Neox, 256, 256, 4, 1, 1, 300, true, false),
        (RopeMode::Neox, 64, 32, 4, 2, 5, 7, true, true),
        (RopeMode::Normal, 64, 64, 9, 3, 1, 4000, false, false),
        (RopeMode::Normal, 48, 32, 2, 2, 6, 0, false, true),
    ];
    each_config(|gpu, _| {
        let mut fails = Vec::new();
        let (mut same, mut total) = (0usize, 0usize);
        for (c, &(mode, hd, n_rot, nh, nkv, tokens, pos0, with_norm, extras)) in
            cases.iter().enumerate()
        {
            let mut rope = Rope {
                n_rot,
                ..Rope::new(mode, hd, 10_000.0)
            };
            if extras {
                rope.freq_scale = 0.25;
                rope.attn_factor = 1.2;
                rope.yarn = Some(rope::Yarn {
                    orig_ctx: 64,
                    beta_fast: 32.0,
                    beta_slow: 1.0,
                });
                rope.factors = Some(factors[..(n_rot / 2) as usize].into());
            }
            let (lq, lk) = ((tokens * nh * hd) as usize, (tokens * nkv * hd) as usize);
            let q = randoms(lq, 3.0, 5000 + c as u64);
            let k = randoms(lk, 3.0, 5100 + c as u64);
            let qw: Vec<f32> = randoms(hd as usize, 0.3, 5200)
                .iter()
                .map(|v| v + 1.0)
                .collect();
            let kw: Vec<f32> = randoms(hd as usize, 0.3, 5300)
                .iter()
                .map(|v| v + 1.0)
                .collect();
            let (qwb, kwb) = (gpu.storage_from("qw", &qw), gpu.storage_from("kw", &kw));
            let what = format!(
                "{mode:?} hd {hd} n_rot {n_rot} heads {nh}/{nkv} tokens {tokens} norm {with_norm}"
            );
            // Unfused.
            let (qa, ka) = (gpu.storage_from("q", &q), gpu.storage_from("k", &k));
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = (|| {
                if with_norm {
                    block(norm::encode_rms_norm(
                        gpu,
                        &mut enc,
                        &qa,
                        Some(&qwb),
                        &qa,
                        tokens * nh,
                        hd,
                        eps,
                    ))?;
                    block(norm::encode_rms_norm(
                        gpu,
                        &mut enc,
                        &ka,
                        Some(&kwb),
                        &ka,
                        tokens * nkv,
                        hd,
                        eps,
                    ))?;
                }
                block(rope::encode_rope(
                    gpu, &mut enc, &qa, tokens, nh, pos0, &rope,
                ))?;
                block(rope::encode_rope(
                    gpu, &mut enc, &ka, tokens, nkv, pos0, &rope,
                ))
            })();
            enc.submit();
            let unfused = r.and_then(|_| Ok((read(gpu, &qa, lq)?, read(gpu, &ka, lk)?)));
            // Fused.
            let (qb, kb) = (gpu.storage_from("q", &q), gpu.storage_from("k", &k));
            let n = QkNorm {
                q: &qwb,
                k: &kwb,
                eps,
            };
            // ... storing k and v into layer 1 of a cache at positions pos0.. on the way.
            let vals = randoms(lk, 3.0, 5400 + c as u64);
            let vb = gpu.storage_from("v", &vals);
            let ctx = pos0 + tokens + 3;
            let cache = KvCache::new(gpu, 2, ctx, nkv, hd).expect("cache");
            let store = KvStore {
                cache: &cache,
                layer: 1,
                v: &vb,
            };
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = block(encode_qk_rope(
                gpu,
                &mut enc,
                &qb,
                &kb,
                with_norm.then_some(&n),
                Some(&store),
                tokens,
                nh,
                nkv,
                pos0,
                &rope,
            ));
            enc.submit();
            let fused = r.and_then(|_| Ok((read(gpu, &qb, lq)?, read(gpu, &kb, lk)?)));
            // The cache holds what store_kv writes for the rotated k and for v, bit for bit.
            let expect = KvCache::new(gpu, 2, ctx, nkv, hd).expect("cache");
            let mut enc = wisp::gpu::Encoder::new(gpu);
            let r = block(attention::store_kv(
                gpu, &mut enc, &expect, 1, &kb, &vb, pos0, tokens,
            ));
            enc.submit();
            let caches = r.and_then(|_| {
                Ok((
                    block(cache.read_layer(gpu, 1))?,
                    block(expect.read_layer(gpu, 1))?,
                ))
            });
            match caches {
                Ok(((fk, fv), (ek, ev))) => {
                    if cache.stored(1) != pos0 + tokens || cache.stored(0) != 0 {
                        fails.push(format!(
                            "{what}: stored {:?}",
                            [cache.stored(0), cache.stored(1)]
                        ));
                    }
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    if bits(&fk) != bits(&ek) || bits(&fv) != bits(&ev) {
                        fails.push(format!("{what}: the cache differs from store_kv's"));
                    }
                    let set = fk.iter().chain(&fv).filter(|v| **v != 0.0).count();
                    if set != 2 * lk {
                        fails.push(format!(
                            "{what}: {set} cache values set, {} expected",
                            2 * lk
                        ));
                    }
                }
                Err(e) => fails.push(format!("{what}: store: {e}")),
            }
            match (unfused, fused) {
                (Ok((uq, uk)), Ok((fq, fk))) => {
                    for (u, f) in [(&uq, &fq), (&uk, &fk)] {
                        for (i, (a, b)) in u.iter().zip(f.iter()).enumerate() {
                            total += 1;
                            same += usize::from(a.to_bits() == b.to_bits());
                            // Per element the same operations: any difference is a contraction
                            // choice of the compiler, a few ulps.
                            if (a - b).abs() > 4.0 * f32::EPSILON * a.abs().max(b.abs()) + 1e-30 {
                                fails.push(format!("{what} [{i}]: fused {b}, unfused {a}"));
                                break;
                            }
                        }
                    }
                }
                (u, f) => fails.push(format!("{what}: {:?} {:?}", u.err(), f.err())),
            }
        }
        eprintln!("qk_rope: {same} of {total} values bit-identical to the unfused ops");
        fails
    });
}
