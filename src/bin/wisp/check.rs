//! `wisp check`: every tensor of a model through the GPU kernels against the CPU oracle:
//! dequantize (bit-exact, or equal to the fused-multiply-add evaluation) and matvec (within the
//! rigorous f32 error bound of `ops::cpu::dot_reference`). The README's main command runs it.

use std::time::Instant;

use wisp::gguf::GgufFile;
use wisp::gpu::{Gpu, GpuOptions, GpuWeight};
use wisp::ops::{cpu, dequant, matvec, synth::Rng};

use crate::cli::CheckArgs;

pub fn run(args: CheckArgs) -> Result<(), Box<dyn std::error::Error>> {
    let path = args.model.path()?;
    let file = GgufFile::open(&path)?;
    let g = file.gguf();
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
    let c = &gpu.caps;
    println!(
        "{} ({}): {} tensors | adapter {} ({}, {:?}, f16 {}, subgroups {} [{}..{}], binding {} MiB, family {})",
        path.display(),
        g.architecture().unwrap_or("?"),
        g.tensors.len(),
        c.adapter.name,
        c.adapter.backend,
        c.tier,
        c.shader_f16,
        c.subgroups,
        c.subgroup_min_size,
        c.subgroup_max_size,
        c.max_binding >> 20,
        c.family.name()
    );
    println!(
        "{:<28} {:<5} {:>14} {:>6} {:>11} {:>8} {:>9}",
        "tensor", "type", "shape", "parts", "dequant", "fma", "matvec"
    );
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
        if t.row_len() % 32 == 0 && t.rows() > 1 {
            let k = t.row_len() as usize;
            let x: Vec<f32> = (0..k).map(|_| rng.unit()).collect();
            let y = pollster::block_on(matvec::run(&gpu, &w, &x))?;
            let reference = cpu::dot_reference(t.ty, data, t.rows() as usize, k, &x, 1)?;
            let ratio = reference.error_ratio(&y);
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
        println!(
            "{:<28} {:<5} {:>14} {:>6} {:>11} {:>8} {:>9}",
            t.name,
            t.ty.to_string(),
            shape,
            w.chunks.len(),
            deq,
            cmp.fused,
            mv
        );
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
