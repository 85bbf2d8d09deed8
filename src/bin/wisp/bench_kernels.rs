//! `wisp bench-kernels`: the adapter's read roofline and every format's matvec (as % of that
//! roofline) and matmul (GFLOP/s), measured in one run on one adapter.

use serde_json::json;
use wisp::bench;
use wisp::gpu::{Gpu, GpuOptions, KernelFamily};
use wisp::ops::matvec::Precision::{Exact, Fast};
use wisp::quant::GgmlType;

use crate::cli::BenchArgs;

/// Column counts whose weight pass `bench-kernels` times against a one-column matvec.
const FEW_COLS: [u32; 4] = [2, 4, 8, 16];

pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let k_len = args.k;
    let mut gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
    let chosen = gpu.caps.family;
    let formats: Vec<GgmlType> = if args.formats.is_empty() {
        GgmlType::SUPPORTED.to_vec()
    } else {
        args.formats
            .iter()
            .map(|n| {
                GgmlType::from_name(n)
                    .filter(|t| t.is_supported())
                    .ok_or_else(|| format!("unknown or unsupported format '{n}'"))
            })
            .collect::<Result<_, _>>()?
    };
    let families: Vec<KernelFamily> = if args.all_families {
        vec![
            chosen,
            if chosen == KernelFamily::Row {
                KernelFamily::Workgroup
            } else {
                KernelFamily::Row
            },
        ]
    } else {
        vec![chosen]
    };
    let c = &gpu.caps;
    let adapter = crate::load::adapter_json(c);
    if !args.json {
        eprintln!(
            "adapter: {} ({}, tier {}, chosen family: {})",
            c.adapter.name,
            c.adapter.backend,
            crate::load::tier_label(c),
            chosen.name()
        );
    }
    // Software adapters share the CPU with everything else, so their speed drifts during a run.
    // The roofline is measured again before every format and the highest value seen is the one
    // every kernel is compared with: the ratios can only err on the low side.
    let mut roof = pollster::block_on(bench::roofline(&gpu, 128 << 20, args.iters))?;
    let mut alu = pollster::block_on(bench::alu_peak(&gpu, args.iters))?;
    let mut rows_out = Vec::new();
    for fam in families {
        gpu.set_family(fam);
        for &ty in &formats {
            let Some(row_bytes) = wisp::quant::row_bytes(ty, k_len) else {
                continue;
            };
            let again = pollster::block_on(bench::roofline(&gpu, 128 << 20, args.iters.min(3)))?;
            if again.gbs > roof.gbs {
                roof = again;
            }
            alu = alu.max(pollster::block_on(bench::alu_peak(&gpu, 1))?);
            let rows = ((args.mib << 20) / row_bytes).max(64);
            let mv = pollster::block_on(bench::matvec(&gpu, ty, rows, k_len, args.iters, Exact))?;
            let fast = if ty.has_x8_kernel() {
                Some(pollster::block_on(bench::matvec(
                    &gpu, ty, rows, k_len, args.iters, Fast,
                ))?)
            } else {
                None
            };
            let mm_rows = (rows / 8).clamp(64, 8192);
            let mm = pollster::block_on(bench::matmul(
                &gpu,
                ty,
                mm_rows,
                k_len,
                args.cols,
                args.iters.min(3),
            ))?;
            // A weight pass over a few columns (speculative decoding's verify pass, batched
            // slots) over a one-column matvec of the same weights: n columns cost this many
            // decode steps (the few-column kernel up to matmul::MAX_FEW_COLS where the adapter
            // runs it, the prefill kernel past it).
            let mut few = Vec::new();
            for n in FEW_COLS {
                let t =
                    pollster::block_on(bench::matmul(&gpu, ty, rows, k_len, n, args.iters.min(3)))?;
                few.push((n, t.seconds / mv.seconds));
            }
            rows_out.push((fam == chosen, rows, mm_rows, mv, fast, mm, few));
        }
    }
    let mut kernels = Vec::new();
    if !args.json {
        println!(
            "read roofline: {:.2} GB/s ({:?} reads over {} MiB); ALU roofline: {alu:.1} GFLOP/s (f32 FMA chains)",
            roof.gbs,
            roof.shape,
            roof.bytes >> 20
        );
        println!(
            "{:<6} {:<7} {:<10} {:>9} {:>9} {:>9} {:>7}",
            "format", "op", "family", "GB/s", "% roof", "GFLOP/s", "% ALU"
        );
    }
    for (is_chosen, rows, mm_rows, mv, fast, mm, few) in rows_out {
        let ty = mv.ty.to_string();
        for mv in std::iter::once(&mv).chain(fast.as_ref()) {
            let pct = 100.0 * mv.gbs / roof.gbs;
            if !args.json {
                println!(
                    "{ty:<6} {:<7} {:<10} {:>9.2} {pct:>8.1}% {:>9.2} {:>6.1}%",
                    mv.op,
                    mv.family,
                    mv.gbs,
                    mv.gflops,
                    100.0 * mv.gflops / alu
                );
            }
            kernels.push(
                json!({"format": ty, "op": mv.op, "family": mv.family, "chosen": is_chosen,
                "rows": rows, "k": k_len, "bytes": mv.weight_bytes, "gbs": mv.gbs, "pct_of_roofline": pct,
                "gflops": mv.gflops, "pct_of_alu_peak": 100.0 * mv.gflops / alu}),
            );
        }
        if !args.json {
            println!(
                "{ty:<6} {:<7} {:<10} {:>9.2} {:>9} {:>9.2} {:>6.1}%",
                "matmul",
                mm.family,
                mm.gbs,
                "",
                mm.gflops,
                100.0 * mm.gflops / alu
            );
        }
        kernels.push(
            json!({"format": ty, "op": "matmul", "family": mm.family, "chosen": is_chosen,
            "rows": mm_rows, "k": k_len, "cols": args.cols, "gflops": mm.gflops,
            "pct_of_alu_peak": 100.0 * mm.gflops / alu}),
        );
        if !args.json {
            println!(
                "{ty:<6} {:<7} {:<10} n columns cost, in 1-column matvecs: {}",
                "few",
                mm.family,
                few.iter()
                    .map(|(n, r)| format!("{n}: {r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        kernels.push(
            json!({"format": ty, "op": "few_columns", "family": mm.family,
            "chosen": is_chosen, "rows": rows, "k": k_len,
            "steps_per_pass": few.iter().map(|(n, r)| (n.to_string(), json!(r)))
                .collect::<serde_json::Map<_, _>>()}),
        );
    }
    if args.json {
        let doc = json!({"adapter": adapter, "roofline_gbs": roof.gbs, "roofline_shape": format!("{:?}", roof.shape),
            "alu_peak_gflops": alu, "kernels": kernels});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
