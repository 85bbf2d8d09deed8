//! Attention (KV cache store, flash-style prefill, split-K decode) against the f64 reference on
//! every adapter and every tier it allows.
//!
//! Each scenario runs a sequence of steps on one cache (whole prompt, chunks after existing
//! entries, decode at several positions) and compares every output with `attention_ref` over
//! the cache as read back, so the f16 rounding of K and V at T1+ is in the reference and the
//! tolerance is the f32-evaluation bound documented on `attention_ref`. The cache contents are
//! checked too: exact at f32, one of the two nearest f16 values at f16.
//!
//! The 2049-token scenarios run at the highest tier only (see `Runs`). Mutated references
//! (window ± 1, strictly causal) must fail against the GPU: the comparison can see an
//! off-by-one in a mask. `WISP_ATTENTION_VERBOSE=1` prints every step's error.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use wisp::gpu::{Gpu, KernelFamily, Tier};
use wisp::ops::attention::{
    self, attention_ref, AttnConfig, AttnRef, KvCache, KvType, RefShape, Tiles,
};
use wisp::ops::matvec::{self, X8};
use wisp::ops::synth::Rng;

#[derive(Clone, Copy, Debug)]
enum Step {
    /// store_kv + prefill of `n` tokens at `pos0`.
    Prefill(u32, u32),
    /// attend (store_kv + decode) of the token at `pos`.
    Decode(u32),
}

/// Where a scenario runs: the long ones cost seconds per config on software adapters.
#[derive(Clone, Copy, PartialEq)]
enum Runs {
    /// Every tier of every adapter.
    Every,
    /// Each adapter's highest tier.
    TopTier,
    /// The highest tier of adapters with subgroups (lavapipe here; SwiftShader is T0).
    TopTierT2,
}

struct Scenario {
    name: &'static str,
    head_dim: u32,
    n_heads: u32,
    n_kv_heads: u32,
    window: u32,
    ctx: u32,
    steps: &'static [Step],
    runs: Runs,
    /// Force the cache's element type whatever the tier (T0 kernels read f16 too).
    dtype: Option<KvType>,
    /// Mutated masks the GPU output must fail against: (label, window, pos0 shift).
    mutants: &'static [(&'static str, u32, usize)],
}

use Step::{Decode, Prefill};

const fn sc(
    name: &'static str,
    (head_dim, n_heads, n_kv_heads): (u32, u32, u32),
    window: u32,
    ctx: u32,
    steps: &'static [Step],
    runs: Runs,
) -> Scenario {
    Scenario {
        name,
        head_dim,
        n_heads,
        n_kv_heads,
        window,
        ctx,
        steps,
        runs,
        dtype: None,
        mutants: &[],
    }
}

/// Sequence lengths 1, 7, 513 (across a 512 window), 2049; head_dim 64, 96, 128, 256; query
/// heads per kv head 1, 4, 6, 8, 16; whole prompts, chunks after cached positions, decode.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        mutants: &[("strictly causal", 0, 1)],
        ..sc(
            "MHA d64",
            (64, 4, 4),
            0,
            40,
            &[
                Prefill(0, 7),
                Prefill(7, 1),
                Decode(8),
                Prefill(9, 7),
                Decode(16),
            ],
            Runs::Every,
        )
    },
    Scenario {
        dtype: Some(KvType::F16),
        ..sc(
            "MHA d64, f16 cache on every tier",
            (64, 2, 2),
            3,
            12,
            &[Prefill(0, 7), Decode(7), Prefill(8, 3)],
            Runs::Every,
        )
    },
    Scenario {
        dtype: Some(KvType::F32),
        ..sc(
            "GQA4 d128, f32 cache on every tier",
            (128, 8, 2),
            0,
            12,
            &[Prefill(0, 7), Decode(7)],
            Runs::Every,
        )
    },
    Scenario {
        mutants: &[("window 4", 4, 0), ("window 6", 6, 0)],
        ..sc(
            "GQA4 d128 window 5",
            (128, 8, 2),
            5,
            24,
            &[
                Prefill(0, 7),
                Decode(7),
                Decode(8),
                Prefill(9, 7),
                Decode(16),
            ],
            Runs::Every,
        )
    },
    sc(
        "MQA8 d256",
        (256, 8, 1),
        0,
        16,
        &[Prefill(0, 1), Prefill(1, 7), Decode(8), Decode(9)],
        Runs::Every,
    ),
    // 16 heads per kv head: more than a decode workgroup's 8 rows (two head groups).
    sc(
        "MQA16 d256 window 4",
        (256, 16, 1),
        4,
        12,
        &[Prefill(0, 7), Decode(7), Decode(8)],
        Runs::Every,
    ),
    // 6 heads per kv head: prefill tiles end inside a token, decode leaves rows idle.
    sc(
        "GQA6 d96",
        (96, 12, 2),
        0,
        16,
        &[Prefill(0, 9), Decode(9), Decode(10)],
        Runs::Every,
    ),
    Scenario {
        mutants: &[("window 511", 511, 0), ("window 513", 513, 0)],
        ..sc(
            "Gemma d256 GQA4 window 512",
            (256, 4, 1),
            512,
            520,
            &[Prefill(0, 513), Decode(513), Decode(514), Decode(515)],
            Runs::Every,
        )
    },
    sc(
        "GQA4 d64 chunk across 512",
        (64, 8, 2),
        0,
        520,
        &[Prefill(0, 500), Prefill(500, 13), Decode(513)],
        Runs::Every,
    ),
    sc(
        "GQA8 d64 2049 tokens window 128",
        (64, 8, 1),
        128,
        2051,
        &[
            Prefill(0, 1024),
            Prefill(1024, 1025),
            Decode(2049),
            Decode(2050),
        ],
        Runs::TopTier,
    ),
    sc(
        "GQA4 d64 2049 tokens",
        (64, 4, 1),
        0,
        2050,
        &[Prefill(0, 2049), Decode(2049)],
        Runs::TopTierT2,
    ),
];

/// Query rows the reference checks: all of short prompts; of long ones a sample covering every
/// tile position (stride 61 is prime to every tile height) and the last tokens.
fn sample_tokens(n: usize) -> Vec<usize> {
    if n <= 600 {
        return (0..n).collect();
    }
    (0..n).filter(|t| t % 61 < 3 || t + 4 >= n).collect()
}

/// Scenario data: K and V for every position `[pos][kv_head][d]` and each step's queries.
struct Data {
    k: Vec<f32>,
    v: Vec<f32>,
    q: Vec<Vec<f32>>,
}

fn data(sc: &Scenario, seed: u64) -> Data {
    let mut r = Rng(seed);
    let kv = (sc.ctx * sc.n_kv_heads * sc.head_dim) as usize;
    // Keys near unit scale, queries larger, so softmax is peaked as in real models. Positions
    // 0 (like BOS) and ctx/2 + 1 have large keys, "attention sinks": the first makes the window
    // edge matter, the second moves the running maximum late in a row.
    let mut k: Vec<f32> = (0..kv).map(|_| r.unit()).collect();
    let row = (sc.n_kv_heads * sc.head_dim) as usize;
    for p in [0, sc.ctx as usize / 2 + 1] {
        k[p * row..(p + 1) * row].iter_mut().for_each(|x| *x *= 4.0);
    }
    let v = (0..kv).map(|_| r.unit()).collect();
    let q = sc
        .steps
        .iter()
        .map(|s| {
            let n = match *s {
                Prefill(_, n) => n,
                Decode(_) => 1,
            };
            (0..(n * sc.n_heads * sc.head_dim) as usize)
                .map(|_| 3.0 * r.unit())
                .collect()
        })
        .collect();
    Data { k, v, q }
}

/// Worst comparison of a config, and what failed.
struct Stats {
    max_ratio: f64,
    max_err: f64,
    /// Smallest error × bound against a mutated mask (must be > 1).
    weakest_mutant: f64,
    /// f16 cache values that are the other neighbour, not round-to-nearest-even.
    not_rne: usize,
    failures: Vec<String>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            max_ratio: 0.0,
            max_err: 0.0,
            weakest_mutant: f64::INFINITY,
            not_rne: 0,
            failures: Vec::new(),
        }
    }
}

/// References keyed by (scenario, step), with the cache snapshot they were computed from:
/// configs whose caches hold the same bits share them.
type RefCache = HashMap<(usize, usize), Vec<(Vec<f32>, Vec<f32>, AttnRef)>>;

fn reference(shape: &RefShape, q: &[f32], k: &[f32], v: &[f32], tokens: &[usize]) -> AttnRef {
    // Two threads: the machine has two cores and the GPU is idle meanwhile.
    let mid = tokens.len() / 2;
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| attention_ref(shape, q, k, v, &tokens[mid..]));
        let a = attention_ref(shape, q, k, v, &tokens[..mid]);
        (a, h.join().expect("reference thread"))
    });
    AttnRef {
        out: [a.out, b.out].concat(),
        bound: [a.bound, b.bound].concat(),
    }
}

/// Largest |got − want| / bound over the checked rows of `got` (`[token][head][d]` for all tokens).
fn ratio(got: &[f32], r: &AttnRef, tokens: &[usize], row: usize) -> (f64, f64) {
    let (mut worst, mut err_max) = (0.0f64, 0.0f64);
    for (i, &t) in tokens.iter().enumerate() {
        for j in 0..row {
            let g = f64::from(got[t * row + j]);
            let e = (g - r.out[i * row + j]).abs();
            let q = e / r.bound[i * row + j];
            worst = if q.is_nan() || g.is_nan() {
                f64::INFINITY
            } else {
                worst.max(q)
            };
            err_max = err_max.max(e);
        }
    }
    (worst, err_max)
}

/// Whether `got` is an f16 value and one of the two nearest to `want` (WGSL leaves the
/// rounding direction of f32 → f16 to the implementation).
fn f16_neighbour(want: f32, got: f32) -> bool {
    if half::f16::from_f32(got).to_f32() != got {
        return false;
    }
    let a = f64::from(want.abs().min(got.abs()));
    let spacing = if a < f64::powi(2.0, -14) {
        f64::powi(2.0, -24)
    } else {
        f64::powi(2.0, a.log2().floor() as i32 - 10)
    };
    (f64::from(got) - f64::from(want)).abs() < spacing
}

/// Checks that positions `[0, end)` of the cache hold the stored values (f16: a neighbour), so
/// a store that clobbers older positions cannot hide in the reference. Counts f16 values that
/// are not round-to-nearest-even in `st`.
fn check_cache(
    sc: &Scenario,
    d: &Data,
    cache: &KvCache,
    (kc, vc): (&[f32], &[f32]),
    end: u32,
    st: &mut Stats,
) -> Option<String> {
    let (kvh, dim) = (sc.n_kv_heads as usize, sc.head_dim as usize);
    for p in 0..end as usize {
        for h in 0..kvh {
            for i in 0..dim {
                let src = (p * kvh + h) * dim + i;
                let dst = (h * sc.ctx as usize + p) * dim + i;
                for (want, got, what) in [(d.k[src], kc[dst], "K"), (d.v[src], vc[dst], "V")] {
                    let ok = match cache.shape().dtype {
                        KvType::F32 => got == want,
                        KvType::F16 => {
                            if half::f16::from_f32(want).to_f32() != got {
                                if st.not_rne == 0 {
                                    eprintln!("  first f16 not RNE: {want:e} stored as {got:e}");
                                }
                                st.not_rne += 1;
                            }
                            f16_neighbour(want, got)
                        }
                    };
                    if !ok {
                        return Some(format!("cache {what} at position {p}, kv head {h}, {i}: stored {want}, holds {got}"));
                    }
                }
            }
        }
    }
    None
}

/// Decode at `fast` precision: the pass that writes the output (the decode kernel with one
/// split, the reduce with several) also quantizes it, bit for bit as `quantize_x8` quantizes
/// the f32 output, which itself must equal the plain decode's (`want`).
fn check_x8(
    gpu: &Gpu,
    cache: &KvCache,
    layer: u32,
    q: &wgpu::Buffer,
    pos: u32,
    cfg: &AttnConfig,
    want: &[f32],
) -> Option<String> {
    let row = want.len();
    let (x8, expect) = (X8::new(gpu, row as u32), X8::new(gpu, row as u32));
    let out = gpu.storage("out x8", (row * 4) as u64);
    let mut enc = wisp::gpu::Encoder::new(gpu);
    let rec = pollster::block_on(async {
        let did =
            attention::decode(gpu, &mut enc, cache, layer, q, &out, pos, cfg, Some(&x8)).await?;
        matvec::encode_quantize_x8(gpu, &mut enc, &out, row as u32, &expect).await?;
        Ok::<bool, wisp::gpu::GpuError>(did)
    });
    let did = match rec {
        Ok(d) => d,
        Err(e) => return Some(format!("decode with x8: {e}")),
    };
    if !did {
        return Some("decode did not quantize its output (head_dim is a multiple of 32)".into());
    }
    enc.submit();
    let read = |b: &wgpu::Buffer, n: usize| pollster::block_on(gpu.read_f32(b, n));
    let pieces = row / 32;
    let all = (
        read(&out, row),
        read(&x8.q, pieces * 8),
        read(&expect.q, pieces * 8),
        read(&x8.s, pieces * 4),
        read(&expect.s, pieces * 4),
    );
    let (o, gq, wq, gs, ws) = match all {
        (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)) => (a, b, c, d, e),
        _ => return Some("x8 readback failed".into()),
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    if bits(&o) != bits(want) {
        return Some("the x8 decode's f32 output differs from the plain decode's".into());
    }
    if let Some(i) = (0..gq.len()).find(|&i| gq[i].to_bits() != wq[i].to_bits()) {
        return Some(format!(
            "x8 quants differ from quantize_x8's at word {i}: {:#010x} vs {:#010x}",
            gq[i].to_bits(),
            wq[i].to_bits()
        ));
    }
    if let Some(i) = (0..gs.len()).find(|&i| gs[i].to_bits() != ws[i].to_bits()) {
        return Some(format!(
            "x8 scales differ from quantize_x8's at {i}: {} vs {}",
            gs[i], ws[i]
        ));
    }
    None
}

fn run_scenario(
    gpu: &Gpu,
    si: usize,
    sc: &Scenario,
    refs: &mut RefCache,
    mutate: bool,
    st: &mut Stats,
) {
    let fail = |st: &mut Stats, m: String| st.failures.push(format!("{}: {m}", sc.name));
    let d = data(sc, 1000 + si as u64);
    let cache = match sc.dtype {
        Some(t) => KvCache::with_type(gpu, 2, sc.ctx, sc.n_kv_heads, sc.head_dim, t),
        None => KvCache::new(gpu, 2, sc.ctx, sc.n_kv_heads, sc.head_dim),
    };
    let cache = match cache {
        Ok(c) => c,
        Err(e) => return fail(st, format!("cache: {e}")),
    };
    let layer = 1;
    let cfg = AttnConfig {
        n_heads: sc.n_heads,
        window: sc.window,
        scale: 1.0 / (sc.head_dim as f32).sqrt(),
        softcap: 0.0,
    };
    let row = (sc.n_heads * sc.head_dim) as usize;
    let kv_row = (sc.n_kv_heads * sc.head_dim) as usize;
    for (i, step) in sc.steps.iter().enumerate() {
        let (pos0, n) = match *step {
            Prefill(p, n) => (p, n),
            Decode(p) => (p, 1),
        };
        let span = pos0 as usize * kv_row..(pos0 + n) as usize * kv_row;
        let kb = gpu.storage_from("k", &d.k[span.clone()]);
        let vb = gpu.storage_from("v", &d.v[span]);
        let qb = gpu.storage_from("q", &d.q[i]);
        let ob = gpu.storage("out", (row * n as usize * 4) as u64);
        let mut enc = wisp::gpu::Encoder::new(gpu);
        let rec = pollster::block_on(async {
            match *step {
                Prefill(..) => {
                    attention::store_kv(gpu, &mut enc, &cache, layer, &kb, &vb, pos0, n).await?;
                    attention::prefill(gpu, &mut enc, &cache, layer, &qb, &ob, pos0, n, &cfg).await
                }
                Decode(..) => {
                    attention::attend(
                        gpu, &mut enc, &cache, layer, &qb, &kb, &vb, &ob, pos0, 1, &cfg,
                    )
                    .await
                }
            }
        });
        if let Err(e) = rec {
            return fail(st, format!("{step:?}: {e}"));
        }
        enc.submit();
        let got = pollster::block_on(gpu.read_f32(&ob, row * n as usize));
        let cached = pollster::block_on(cache.read_layer(gpu, layer));
        let (got, (kc, vc)) = match (got, cached) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(e), _) | (_, Err(e)) => return fail(st, format!("{step:?}: readback: {e}")),
        };
        if let Some(m) = check_cache(sc, &d, &cache, (&kc, &vc), pos0 + n, st) {
            return fail(st, format!("{step:?}: {m}"));
        }
        let end = ((pos0 + n) as usize) * sc.head_dim as usize;
        let used = |c: &[f32]| -> Vec<f32> {
            (0..sc.n_kv_heads as usize)
                .flat_map(|h| c[h * sc.ctx as usize * sc.head_dim as usize..][..end].to_vec())
                .collect()
        };
        let (ku, vu) = (used(&kc), used(&vc));
        let tokens = sample_tokens(n as usize);
        let shape = RefShape {
            n_heads: sc.n_heads as usize,
            n_kv_heads: sc.n_kv_heads as usize,
            head_dim: sc.head_dim as usize,
            ctx: (pos0 + n) as usize,
            pos0: pos0 as usize,
            window: sc.window as usize,
            scale: cfg.scale,
        };
        let entry = refs.entry((si, i)).or_default();
        let idx = match entry.iter().position(|(k, v, _)| *k == ku && *v == vu) {
            Some(j) => j,
            None => {
                let r = reference(&shape, &d.q[i], &ku, &vu, &tokens);
                entry.push((ku.clone(), vu.clone(), r));
                entry.len() - 1
            }
        };
        if let Decode(pos) = *step {
            if let Some(m) = check_x8(gpu, &cache, layer, &qb, pos, &cfg, &got) {
                return fail(st, format!("{step:?}: {m}"));
            }
        }
        let (worst, err) = ratio(&got, &entry[idx].2, &tokens, row);
        if std::env::var("WISP_ATTENTION_VERBOSE").is_ok() {
            eprintln!("  {} {step:?}: {worst:.3e} × bound, abs {err:.3e}", sc.name);
        }
        st.max_ratio = st.max_ratio.max(worst);
        st.max_err = st.max_err.max(err);
        if worst > 1.0 {
            fail(
                st,
                format!("{step:?}: error {worst:.3e} × the bound (max abs error {err:.3e})"),
            );
        }
        if mutate {
            for &(label, window, shift) in sc.mutants {
                // Shifting the queries' positions needs room before the first one.
                if (pos0 as usize) < shift {
                    continue;
                }
                let m = RefShape {
                    window: window as usize,
                    pos0: pos0 as usize - shift,
                    ..shape
                };
                let r = reference(&m, &d.q[i], &ku, &vu, &tokens);
                let (w, _) = ratio(&got, &r, &tokens, row);
                if std::env::var("WISP_ATTENTION_VERBOSE").is_ok() {
                    eprintln!("  {} {step:?}: {label} mask: {w:.3e} × bound", sc.name);
                }
                st.weakest_mutant = st.weakest_mutant.min(w);
                if w <= 1.0 {
                    fail(st, format!("{step:?}: the {label} mask also passes (ratio {w:.3}): the test cannot see it"));
                }
            }
        }
    }
}

#[test]
fn attention_matches_reference() {
    let mut refs = RefCache::new();
    let mut failures = Vec::new();
    let mut mutated = false;
    for mut gpu in common::devices() {
        let max_tier = gpu.caps.tier;
        let max_family = gpu.caps.prefill_family;
        // With subgroups, prefill has a kernel per family (attention_prefill_rows.wgsl for
        // `row`): both are checked.
        let configs = common::tiers(&gpu).into_iter().flat_map(|tier| {
            let fams = if tier >= Tier::T2 {
                vec![KernelFamily::Row, KernelFamily::Workgroup]
            } else {
                vec![max_family]
            };
            fams.into_iter().map(move |f| (tier, f))
        });
        for (tier, fam) in configs.collect::<Vec<_>>() {
            gpu.set_tier(tier).expect("tier within the device's");
            gpu.set_prefill_family(fam);
            let label = format!("{} {tier:?} prefill {}", gpu.caps.adapter.name, fam.name());
            let t0 = Instant::now();
            let mut st = Stats::default();
            for (si, sc) in SCENARIOS.iter().enumerate() {
                let run = match sc.runs {
                    Runs::Every => true,
                    Runs::TopTier => tier == max_tier,
                    Runs::TopTierT2 => tier == max_tier && tier >= Tier::T2,
                };
                if run {
                    let t = Instant::now();
                    run_scenario(&gpu, si, sc, &mut refs, !mutated, &mut st);
                    if std::env::var("WISP_ATTENTION_VERBOSE").is_ok() {
                        eprintln!("  {}: {:.2} s", sc.name, t.elapsed().as_secs_f64());
                    }
                }
            }
            mutated = true;
            eprintln!(
                "[{label}] max error {:.3e} × bound, max abs error {:.3e}, {} f16 not RNE, {:.1} s",
                st.max_ratio,
                st.max_err,
                st.not_rne,
                t0.elapsed().as_secs_f64()
            );
            if st.weakest_mutant.is_finite() {
                eprintln!(
                    "[{label}] mutated masks (window ± 1, strictly causal): at least {:.1} × bound",
                    st.weakest_mutant
                );
            }
            failures.extend(st.failures.into_iter().map(|m| format!("[{label}] {m}")));
        }
        gpu.set_tier(max_tier).expect("restore tier");
        gpu.set_prefill_family(max_family);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every supported head_dim fits WebGPU's 16 KiB of workgroup memory, in both kernels.
#[test]
fn tiles_fit_workgroup_memory() {
    let mut supported = Vec::new();
    for d in (4..=attention::MAX_HEAD_DIM).step_by(4) {
        if let Some(t) = Tiles::for_head_dim(d) {
            supported.push(d);
            assert!(t.prefill_keys >= 1 && t.prefill_keys <= 32, "{d}: {t:?}");
            assert!(t.lanes * t.rows == attention::WORKGROUP, "{d}: {t:?}");
            assert!(
                d / (4 * t.lanes) <= 8 && d.is_multiple_of(4 * t.lanes),
                "{d}: {t:?}"
            );
            for bytes in [t.prefill_shared_bytes(d), t.decode_shared_bytes(d)] {
                assert!(
                    bytes <= attention::SHARED_BYTES,
                    "{d}: {bytes} bytes, {t:?}"
                );
            }
        }
    }
    for d in [64, 80, 96, 112, 128, 160, 192, 256] {
        assert!(supported.contains(&d), "head_dim {d} unsupported");
    }
    let t = |d| Tiles::for_head_dim(d).map(|t| (t.lanes, t.rows, t.prefill_keys));
    assert_eq!(
        (t(64), t(128), t(256)),
        (Some((2, 32, 18)), Some((4, 16, 12)), Some((8, 8, 7)))
    );
}

fn expect_shape_err(
    what: &str,
    r: Result<(), wisp::gpu::GpuError>,
    needle: &str,
) -> Option<String> {
    match r {
        Err(wisp::gpu::GpuError::Shape { tensor, detail })
            if detail.contains(needle) || tensor.contains(needle) =>
        {
            eprintln!("{what}: {tensor}: {detail}");
            None
        }
        other => Some(format!(
            "{what}: expected a shape error mentioning '{needle}', got {other:?}"
        )),
    }
}

#[test]
fn attention_rejects_bad_shapes() {
    let gpu = common::devices().remove(0);
    let mut f = Vec::new();
    for d in [0u32, 72, 260, 512] {
        if KvCache::new(&gpu, 1, 8, 1, d).is_ok() {
            f.push(format!("head_dim {d} accepted"));
        }
    }
    let cache = KvCache::new(&gpu, 2, 8, 2, 64).expect("cache");
    let cfg = AttnConfig {
        n_heads: 4,
        window: 0,
        scale: 0.125,
        softcap: 0.0,
    };
    let small = gpu.storage("small", 4 * 64);
    let kv = gpu.storage("kv", 4 * 2 * 64 * 3);
    let q = gpu.storage("q", 4 * 4 * 64 * 3);
    let out = gpu.storage("out", 4 * 4 * 64 * 3);
    let mut enc = wisp::gpu::Encoder::new(&gpu);
    let mut run = |what: &str,
                   needle: &str,
                   fut: &mut dyn FnMut(
        &mut wisp::gpu::Encoder<'_>,
    ) -> Result<(), wisp::gpu::GpuError>| {
        f.extend(expect_shape_err(what, fut(&mut enc), needle));
    };
    run("store past ctx", "context full", &mut |e| {
        pollster::block_on(attention::store_kv(&gpu, e, &cache, 0, &kv, &kv, 6, 3))
    });
    run("store into a missing layer", "layer 2", &mut |e| {
        pollster::block_on(attention::store_kv(&gpu, e, &cache, 2, &kv, &kv, 0, 3))
    });
    run(
        "k buffer too small",
        "[3 tokens][2 kv heads][64]",
        &mut |e| pollster::block_on(attention::store_kv(&gpu, e, &cache, 0, &small, &kv, 0, 3)),
    );
    run("prefill before store", "store_kv first", &mut |e| {
        pollster::block_on(attention::prefill(&gpu, e, &cache, 0, &q, &out, 0, 3, &cfg))
    });
    run("heads not a multiple", "not a multiple", &mut |e| {
        let bad = AttnConfig { n_heads: 3, ..cfg };
        pollster::block_on(attention::decode(
            &gpu, e, &cache, 0, &q, &out, 0, &bad, None,
        ))
        .map(|_| ())
    });
    run("decode past ctx", "context full", &mut |e| {
        pollster::block_on(attention::decode(
            &gpu, e, &cache, 0, &q, &out, 8, &cfg, None,
        ))
        .map(|_| ())
    });
    run("q too small", "[3 tokens][4 heads][64]", &mut |e| {
        pollster::block_on(attention::store_kv(&gpu, e, &cache, 0, &kv, &kv, 0, 3))?;
        pollster::block_on(attention::prefill(
            &gpu, e, &cache, 0, &small, &out, 0, 3, &cfg,
        ))
    });
    assert!(f.is_empty(), "{}", f.join("\n"));
}
