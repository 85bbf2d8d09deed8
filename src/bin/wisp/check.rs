//! `wisp check`: every tensor of a model through the GPU kernels against the CPU oracle:
//! dequantize (bit-exact, or equal to the fused-multiply-add evaluation) and matvec (within the
//! rigorous f32 error bound of `ops::cpu::dot_reference`). The README's main command runs it.

use std::time::Instant;

use wisp::gguf::GgufFile;
use wisp::gpu::{Gpu, GpuOptions, GpuWeight};
use wisp::ops::{cpu, dequant, matvec, synth::Rng};

use crate::cli::CheckArgs;

/// One block type's tensors in the default summary.
#[derive(Default)]
struct TypeSummary {
    tensors: usize,
    bytes: u64,
    /// Tensors whose GPU dequantization differed from the CPU's.
    dequant_bad: usize,
    /// The largest matvec error ratio (1 is the f32 bound); `None` when none ran a matvec.
    worst: Option<f64>,
}

pub fn run(args: CheckArgs) -> Result<(), Box<dyn std::error::Error>> {
    let path = args.model.path()?;
    let file = GgufFile::open(&path)?;
    let g = file.gguf();
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
    let c = &gpu.caps;
    println!(
        "{} ({}): {} tensors | adapter {} ({}, binding {} MiB, family {}) | tier {}",
        path.display(),
        g.architecture().unwrap_or("?"),
        g.tensors.len(),
        c.adapter.name,
        c.adapter.backend,
        c.max_binding >> 20,
        c.family.name(),
        crate::load::tier_label(c)
    );
    // Every tensor's row with --tensors or -v; by default only failing ones, then one line per
    // block type.
    let every = args.tensors || crate::cli::verbose();
    let row = |name: &str, ty: &str, shape: &str, parts: &str, deq: &str, fma: &str, mv: &str| {
        println!("{name:<28} {ty:<5} {shape:>14} {parts:>6} {deq:>11} {fma:>8} {mv:>9}")
    };
    let header = || {
        row(
            "tensor", "type", "shape", "parts", "dequant", "fma", "matvec",
        )
    };
    let mut header_shown = every;
    if every {
        header();
    }
    let mut by_type: std::collections::BTreeMap<String, TypeSummary> = Default::default();
    let start = Instant::now();
    let mut failures = 0;
    let mut rng = Rng(0x77157);
    for t in &g.tensors {
        let data = file.tensor_data(t)?;
        let w = GpuWeight::upload(&gpu, &t.name, t.ty, t.row_len(), t.rows(), data)?;
        let got = pollster::block_on(dequant::dequantize(&gpu, &w))?;
        let cmp = cpu::compare_dequant(t.ty, data, &got)?;
        let shape = crate::cli::shape(&t.dims);
        let deq = if cmp.mismatches == 0 {
            "ok".to_string()
        } else {
            format!("{} BAD", cmp.mismatches)
        };
        let mut mv = "-".to_string();
        let mut matvec_ratio = None;
        if t.row_len() % 32 == 0 && t.rows() > 1 {
            let k = t.row_len() as usize;
            let x: Vec<f32> = (0..k).map(|_| rng.unit()).collect();
            let y = pollster::block_on(matvec::run(&gpu, &w, &x))?;
            let reference = cpu::dot_reference(t.ty, data, t.rows() as usize, k, &x, 1)?;
            let ratio = reference.error_ratio(&y);
            matvec_ratio = Some(ratio);
            mv = if ratio <= 1.0 {
                format!("{ratio:.4}")
            } else {
                format!("{ratio:.2} BAD")
            };
            if ratio > 1.0 {
                failures += 1;
            }
        }
        if cmp.mismatches > 0 {
            failures += 1;
            if let Some((i, gv, rv)) = cmp.first_mismatch {
                eprintln!(
                    "  {}: element {i}: GPU {gv:e} ({:#010x}) vs CPU {rv:e} ({:#010x})",
                    t.name,
                    gv.to_bits(),
                    rv.to_bits()
                );
            }
        }
        let bad = cmp.mismatches > 0 || matvec_ratio.is_some_and(|r| r > 1.0);
        if bad && !header_shown {
            header();
            header_shown = true;
        }
        if every || bad {
            row(
                &t.name,
                &t.ty.to_string(),
                &shape,
                &w.chunks.len().to_string(),
                &deq,
                &cmp.fused.to_string(),
                &mv,
            );
        }
        let sum = by_type.entry(t.ty.to_string()).or_default();
        sum.tensors += 1;
        sum.bytes += t.n_bytes;
        sum.dequant_bad += usize::from(cmp.mismatches > 0);
        if let Some(r) = matvec_ratio {
            sum.worst = Some(sum.worst.map_or(r, |w: f64| w.max(r)));
        }
    }
    if !every {
        println!(
            "{:<6} {:>7} {:>12} {:>14} {:>20}",
            "type", "tensors", "bytes", "dequant", "worst matvec ratio"
        );
        for (ty, sum) in &by_type {
            let deq = if sum.dequant_bad == 0 {
                "ok".to_string()
            } else {
                format!("{} BAD", sum.dequant_bad)
            };
            let worst = match sum.worst {
                None => "-".to_string(),
                Some(r) if r <= 1.0 => format!("{r:.4}"),
                Some(r) => format!("{r:.2} BAD"),
            };
            println!(
                "{ty:<6} {:>7} {:>12} {deq:>14} {worst:>20}",
                sum.tensors, sum.bytes
            );
        }
    }
    println!(
        "checked {} tensors in {:.1} s: dequant bit-exact (or FMA-equal) and matvec within the f32 bound (ratio ≤ 1): {}",
        g.tensors.len(),
        start.elapsed().as_secs_f64(),
        if failures == 0 { "all passed".to_string() } else { format!("{failures} FAILED") }
    );
    if failures > 0 {
        return Err(format!("{failures} tensors failed the GPU check").into());
    }
    Ok(())
}
