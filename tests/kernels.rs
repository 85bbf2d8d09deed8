//! Every GPU kernel against the CPU oracle, for every block format, on every adapter, every
//! tier it allows, both kernel families, awkward shapes, and forced small binding limits.
//! Dequantize: bit-exact with gguf-py's arithmetic (or equal to its fused-multiply-add form).
//! matvec/matmul: within the rigorous f32 error bound of `ops::cpu::dot_reference`.

mod common;

use wisp::gpu::{Gpu, GpuWeight, Tier, WeightStore};
use wisp::ops::{cpu, dequant, embed, matmul, matvec, synth};
use wisp::quant::GgmlType;

/// Row lengths: 3 blocks (not a multiple of a 64-lane row split), and 11 blocks for long rows.
fn ks(ty: GgmlType) -> [u64; 2] {
    match ty.geometry().map(|g| g.block_elems) {
        Some(256) => [768, 2816],
        _ => [96, 352],
    }
}

/// Random weights whose first blocks carry extreme finite scales: f16 max, smallest subnormal,
/// negative, and zero.
fn weights(ty: GgmlType, rows: u64, k: u64, seed: u64) -> Vec<u8> {
    let mut data = synth::random_weight(ty, rows, k, seed);
    let bb = ty.geometry().map_or(1, |g| g.block_bytes as usize);
    for (i, v) in [0x7bffu16, 0x0001, 0xbc00, 0x0000, 0x83ff]
        .into_iter()
        .enumerate()
    {
        for &o in synth::scale_offsets(ty) {
            if let Some(b) = data.get_mut(i * bb + o..i * bb + o + 2) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    data
}

fn xs(n: usize, seed: u64) -> Vec<f32> {
    let mut r = synth::Rng(seed);
    (0..n).map(|_| r.unit()).collect()
}

fn check_dequant(gpu: &Gpu, ty: GgmlType, rows: u64, k: u64, seed: u64) -> Option<String> {
    let data = weights(ty, rows, k, seed);
    let w = match GpuWeight::upload(gpu, "t", ty, k, rows, &data) {
        Ok(w) => w,
        Err(e) => return Some(format!("{ty} {rows}x{k}: upload: {e}")),
    };
    let got = match pollster::block_on(dequant::dequantize(gpu, &w)) {
        Ok(v) => v,
        Err(e) => return Some(format!("{ty} {rows}x{k}: dequant: {e}")),
    };
    let c = cpu::compare_dequant(ty, &data, &got).expect("cpu dequant");
    (c.mismatches > 0).then(|| {
        format!(
            "{ty} {rows}x{k} ({} chunks): {} dequant mismatches, first {:?}",
            w.chunks.len(),
            c.mismatches,
            c.first_mismatch
        )
    })
}

fn check_matmul(
    gpu: &Gpu,
    ty: GgmlType,
    rows: u64,
    k: u64,
    cols: u32,
    seed: u64,
) -> Option<String> {
    let data = weights(ty, rows, k, seed);
    let x = xs(k as usize * cols.max(1) as usize, seed ^ 0xabc);
    let w = match GpuWeight::upload(gpu, "t", ty, k, rows, &data) {
        Ok(w) => w,
        Err(e) => return Some(format!("{ty} {rows}x{k}: upload: {e}")),
    };
    let got = if cols == 0 {
        pollster::block_on(matvec::run(gpu, &w, &x))
    } else {
        pollster::block_on(matmul::run(gpu, &w, &x, cols))
    };
    let got = match got {
        Ok(v) => v,
        Err(e) => return Some(format!("{ty} {rows}x{k} cols {cols}: {e}")),
    };
    let reference = cpu::dot_reference(
        ty,
        &data,
        rows as usize,
        k as usize,
        &x,
        cols.max(1) as usize,
    )
    .expect("reference");
    let ratio = reference.error_ratio(&got);
    let op = if cols == 0 {
        "matvec".to_string()
    } else {
        format!("matmul cols {cols}")
    };
    (ratio > 1.0 || ratio.is_nan())
        .then(|| format!("{ty} {rows}x{k} {op}: error {ratio:.3} × the f32 bound"))
}

#[test]
fn dequantize_every_format() {
    common::for_every_config(|gpu, _| {
        let mut f = Vec::new();
        for ty in GgmlType::SUPPORTED {
            for (i, rows) in [1u64, 7].into_iter().enumerate() {
                f.extend(check_dequant(gpu, ty, rows, ks(ty)[i], 11 + rows));
            }
        }
        // Float tensors of a length that is not a multiple of 32 run as one flat row.
        for (ty, n) in [
            (GgmlType::F32, 100u64),
            (GgmlType::F16, 33),
            (GgmlType::BF16, 7),
        ] {
            f.extend(check_dequant(gpu, ty, 1, n, n));
        }
        f
    });
}

#[test]
fn matvec_every_format() {
    common::for_every_config(|gpu, _| {
        let mut f = Vec::new();
        for ty in GgmlType::SUPPORTED {
            for (rows, k) in [(1u64, ks(ty)[0]), (67, ks(ty)[0]), (13, ks(ty)[1])] {
                f.extend(check_matmul(gpu, ty, rows, k, 0, rows * 31 + k));
            }
        }
        f
    });
}

#[test]
fn matmul_every_format() {
    common::for_every_config(|gpu, _| {
        let mut f = Vec::new();
        for ty in GgmlType::SUPPORTED {
            let k = ks(ty)[0];
            // 1 to 8 columns: the few-column kernel in the row family; 33: the prefill kernel.
            for (rows, cols) in [(1u64, 1u32), (67, 3), (70, 33), (45, 8)] {
                f.extend(check_matmul(gpu, ty, rows, k, cols, rows + u64::from(cols)));
            }
        }
        f
    });
}

/// With a 64 KiB binding limit every tensor here is split over several buffers, and dequant's
/// f32 output over several dispatches per buffer.
/// The row kernels' three ways of loading x are all run by the tests above: shared by 8 lanes
/// (lavapipe at T2), by 4 (SwiftShader, T0 with subgroups of 4), and not shared (lavapipe at a
/// forced T0 or T1, standing for an adapter without subgroups).
#[test]
fn x_is_shared_by_the_lanes_each_adapter_has() {
    let mut seen = Vec::new();
    for mut gpu in common::devices() {
        let name = gpu.caps.adapter.name.to_lowercase();
        let max_tier = gpu.caps.tier;
        for tier in common::tiers(&gpu) {
            gpu.set_tier(tier).expect("tier within the device's");
            let want = if name.contains("llvmpipe") {
                if tier == Tier::T2 {
                    8
                } else {
                    0
                }
            } else if name.contains("swiftshader") {
                4
            } else {
                continue;
            };
            assert_eq!(gpu.caps.share_x(), want, "{name} at {tier:?}");
            seen.push(want);
        }
        gpu.set_tier(max_tier).expect("restore tier");
    }
    if std::env::var("WISP_TEST_ADAPTERS")
        .is_ok_and(|a| a.contains("llvmpipe") && a.contains("swiftshader"))
    {
        for w in [0, 4, 8] {
            assert!(
                seen.contains(&w),
                "no configuration shares x by {w} lanes: {seen:?}"
            );
        }
    }
}

#[test]
fn split_over_tiny_bindings() {
    common::for_every_config(|gpu, _| {
        let saved = gpu.caps.max_binding;
        gpu.set_max_binding(64 << 10);
        let mut f = Vec::new();
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
            GgmlType::Q5_0,
            GgmlType::F16,
        ] {
            let k = ks(ty)[1];
            // Not a multiple of 8: with rows interleaved by eight the last octet is partial.
            let rows = 403;
            let parts =
                GpuWeight::upload(gpu, "t", ty, k, rows, &weights(ty, rows, k, 5)).map(|w| {
                    // A texture is not a storage binding: only buffers have the limit.
                    let sizes: Vec<u64> = w
                        .chunks
                        .iter()
                        .filter_map(|c| match &c.store {
                            WeightStore::Buffer(b) => Some(b.size()),
                            WeightStore::Texture { .. } => None,
                        })
                        .collect();
                    (w.chunks.len(), sizes)
                });
            if !matches!(&parts, Ok((n, _)) if *n >= 2) {
                f.push(format!("{ty}: expected a split upload, got {parts:?}"));
            }
            // Each chunk is bound whole: its buffer, repacked groups and padding included,
            // must fit the binding limit.
            if let Ok((_, sizes)) = &parts {
                if sizes.iter().any(|&s| s > 64 << 10) {
                    f.push(format!(
                        "{ty}: chunk buffers {sizes:?} exceed the 65536-byte binding"
                    ));
                }
            }
            f.extend(check_dequant(gpu, ty, rows, k, 5));
            f.extend(check_matmul(gpu, ty, rows, k, 0, 6));
            f.extend(check_matmul(gpu, ty, rows, k, 5, 7));
        }
        gpu.set_max_binding(saved);
        f
    });
}

/// Embedding lookup: rows picked by id (repeats, first and last row, across split chunks) equal
/// the CPU dequantize of those rows bit for bit.
#[test]
fn get_rows_every_format() {
    common::for_every_config(|gpu, label| {
        if !label.ends_with("row") {
            return Vec::new(); // the family does not change this kernel
        }
        let saved = gpu.caps.max_binding;
        let mut f = Vec::new();
        for limit in [saved, 64 << 10] {
            gpu.set_max_binding(limit);
            for ty in GgmlType::SUPPORTED {
                let (rows, k) = (1000u64, ks(ty)[0]);
                let data = weights(ty, rows, k, 21);
                let w = match GpuWeight::upload(gpu, "emb", ty, k, rows, &data) {
                    Ok(w) => w,
                    Err(e) => {
                        f.push(format!("{ty}: upload: {e}"));
                        continue;
                    }
                };
                let ids = [0u32, 999, 7, 7, 500, 1];
                let got = match pollster::block_on(embed::run_get_rows(gpu, &w, &ids)) {
                    Ok(v) => v,
                    Err(e) => {
                        f.push(format!("{ty}: get_rows: {e}"));
                        continue;
                    }
                };
                let all = wisp::quant::dequantize_vec(ty, &data, (rows * k) as usize).expect("cpu");
                for (t, &id) in ids.iter().enumerate() {
                    let k = k as usize;
                    let want = &all[id as usize * k..(id as usize + 1) * k];
                    let have = &got[t * k..(t + 1) * k];
                    if want
                        .iter()
                        .zip(have)
                        .any(|(a, b)| a.to_bits() != b.to_bits())
                    {
                        f.push(format!(
                            "{ty} limit {limit}: row {id} differs ({} chunks)",
                            w.chunks.len()
                        ));
                    }
                }
            }
            if pollster::block_on(embed::run_get_rows(
                gpu,
                &GpuWeight::upload(gpu, "e", GgmlType::F32, 32, 2, &[0u8; 256]).expect("upload"),
                &[2],
            ))
            .is_ok()
            {
                f.push("an out-of-range id was accepted".into());
            }
        }
        gpu.set_max_binding(saved);
        f
    });
}

/// A weight written piece by piece (pieces of 1 to 4093 bytes, as IndexedDB records or network
/// chunks arrive) over a split upload equals the CPU dequantize bit for bit, in both layouts
/// (rows interleaved by eight, whose writer carries a whole octet of rows, and GGUF's order);
/// too many or too few bytes are errors naming the tensor.
#[test]
fn streamed_upload_in_odd_pieces() {
    use wisp::gpu::WeightWriter;
    let mut gpu = common::devices().remove(0);
    gpu.set_max_binding(64 << 10);
    // Q8_0 rows of 3 blocks are 102 bytes: chunk ends are not 4-byte aligned. 1500 rows: the
    // last octet of rows is partial.
    for (ty, k, rows8) in [
        (GgmlType::Q8_0, 96, true),
        (GgmlType::Q8_0, 96, false),
        (GgmlType::Q4_K, 256, true),
        (GgmlType::Q4_K, 256, false),
        (GgmlType::F16, 96, false),
    ] {
        gpu.set_rows8(rows8);
        let rows = 1500;
        let data = weights(ty, rows, k, 9);
        let w = GpuWeight::allocate(&gpu, "streamed", ty, k, rows).expect("allocates");
        assert!(w.chunks.len() >= 2, "{ty}: expected a split");
        assert_eq!(w.rows8, rows8, "{ty}: the layout asked for");
        if rows8 {
            assert!(
                w.chunks.iter().all(|c| c.first_row % 8 == 0),
                "{ty}: chunks start at an octet of rows"
            );
        }
        let mut writer = WeightWriter::new(&w);
        let mut rest = &data[..];
        for size in [1usize, 2, 3, 5, 4093, 7, 64, 1000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, r) = rest.split_at((*size).min(rest.len()));
            writer.push(&gpu, piece).expect("push");
            rest = r;
        }
        writer.finish(&gpu).expect("every byte arrived");
        let got = pollster::block_on(dequant::dequantize(&gpu, &w)).expect("dequant");
        let c = cpu::compare_dequant(ty, &data, &got).expect("cpu dequant");
        assert_eq!(
            c.mismatches, 0,
            "{ty}: first mismatch {:?}",
            c.first_mismatch
        );

        let mut over = WeightWriter::new(&w);
        over.push(&gpu, &data).expect("exactly all bytes");
        let err = over.push(&gpu, &[0]).expect_err("one byte too many");
        assert!(err.to_string().contains("streamed"), "{err}");
        let mut short = WeightWriter::new(&w);
        short.push(&gpu, &data[..data.len() - 1]).expect("push");
        let err = short.finish(&gpu).expect_err("one byte short");
        assert!(err.to_string().contains("only"), "{err}");
    }
}

/// The fused gate+up matvec (`matvec::encode_glu`: both projections and the gated unit in one
/// dispatch) against the unfused path it replaces (the matvec over all 2n rows, then the
/// activation on its halves), every format, both activations, every adapter, tier and family:
/// per row the same sums in the same order and the same activation, so the same bits (a few ulps
/// are allowed for a compiler's different contraction choices).
#[test]
fn fused_gate_up_matches_the_unfused_ops() {
    common::for_every_config(|gpu, _| {
        let mut f = Vec::new();
        let (mut same, mut total) = (0usize, 0usize);
        // 40 rows: a multiple of 8, as every model's FFN width is; 37: the fused kernel takes it
        // in GGUF's order, and with rows interleaved by eight leaves it to the unfused path.
        for (ty, n) in GgmlType::SUPPORTED
            .into_iter()
            .flat_map(|t| [(t, 40u64), (t, 37)])
        {
            let k = ks(ty)[0];
            let data = weights(ty, 2 * n, k, n * 7 + k);
            let x = xs(k as usize, k ^ 0x77);
            let w = match GpuWeight::upload(gpu, "gate+up", ty, k, 2 * n, &data) {
                Ok(w) => w,
                Err(e) => {
                    f.push(format!("{ty}: upload: {e}"));
                    continue;
                }
            };
            for gelu in [false, true] {
                let xb = gpu.storage_from("x", &x);
                let (gu, y_unfused, y_fused) = (
                    gpu.storage("gu", 2 * n * 4),
                    gpu.storage("y", n * 4),
                    gpu.storage("y", n * 4),
                );
                let mut enc = wisp::gpu::Encoder::new(gpu);
                let r = pollster::block_on(async {
                    matvec::encode(gpu, &mut enc, &w, &xb, &gu).await?;
                    wisp::ops::act::encode_glu_halves(
                        gpu, &mut enc, &gu, &y_unfused, 1, n as u32, gelu,
                    )
                    .await?;
                    matvec::encode_glu(gpu, &mut enc, &w, matvec::Input::F32(&xb), &y_fused, gelu)
                        .await
                });
                enc.submit();
                match r {
                    Ok(true) => {}
                    Ok(false) if w.rows8 && n % 8 != 0 => continue,
                    r => {
                        f.push(format!("{ty} {n} rows, gelu {gelu}: {r:?}"));
                        continue;
                    }
                }
                let a = pollster::block_on(gpu.read_f32(&y_unfused, n as usize)).expect("read");
                let b = pollster::block_on(gpu.read_f32(&y_fused, n as usize)).expect("read");
                let (s, fail) =
                    common::same_as_unfused(&a, &b, &format!("{ty} {n} rows, gelu {gelu}"));
                total += a.len();
                same += s;
                f.extend(fail);
            }
        }
        eprintln!("fused gate+up: {same} of {total} rows bit-identical to the unfused ops");
        f
    });
}

/// q, k and v in one dispatch (`matvec::encode_split`, a concatenated weight whose rows go to
/// three outputs) against a matvec per part on its own weight, and the prefill's matmul over a
/// row range (`matmul::encode_rows`) against a matmul on the part alone: every format, both
/// precisions, every adapter, tier and family. Per row the same sums in the same order, so the
/// same bits (a few ulps are allowed for a compiler's different contraction choices).
#[test]
fn split_qkv_matches_separate_ops() {
    common::for_every_config(|gpu, _| {
        let mut f = Vec::new();
        let (mut same, mut total) = (0usize, 0usize);
        let rows = [37u32, 13, 13];
        let n: u64 = rows.iter().map(|&r| u64::from(r)).sum();
        for ty in GgmlType::SUPPORTED {
            let k = ks(ty)[0];
            let data = weights(ty, n, k, n * 11 + k);
            let row_bytes = data.len() / n as usize;
            let upload = |name: &str, bytes: &[u8], r: u64| {
                GpuWeight::upload(gpu, name, ty, k, r, bytes).map_err(|e| format!("{ty}: {e}"))
            };
            let fused = match upload("qkv", &data, n) {
                Ok(w) => w,
                Err(e) => {
                    f.push(e);
                    continue;
                }
            };
            let mut parts = Vec::new();
            let mut first = 0usize;
            for &r in &rows {
                let end = first + r as usize * row_bytes;
                match upload("part", &data[first..end], u64::from(r)) {
                    Ok(w) => parts.push(w),
                    Err(e) => f.push(e),
                }
                first = end;
            }
            if parts.len() != 3 {
                continue;
            }
            let x = xs(k as usize, k ^ 0x51);
            let xb = gpu.storage_from("x", &x);
            let q8 = matvec::X8::new(gpu, k as u32);
            let cols = 5u32;
            let xm: Vec<f32> = (0..cols as u64)
                .flat_map(|c| xs(k as usize, c * 31 + k))
                .collect();
            let xmb = gpu.storage_from("X", &xm);
            for fast in [false, true] {
                let out = |r: u32, c: u32| gpu.storage("y", u64::from(r * c) * 4);
                let sep: Vec<_> = rows.iter().map(|&r| out(r, 1)).collect();
                let one: Vec<_> = rows.iter().map(|&r| out(r, 1)).collect();
                let mm_sep: Vec<_> = rows.iter().map(|&r| out(r, cols)).collect();
                let mm_rows: Vec<_> = rows.iter().map(|&r| out(r, cols)).collect();
                let mut enc = wisp::gpu::Encoder::new(gpu);
                let r = pollster::block_on(async {
                    let input = if fast {
                        matvec::encode_quantize_x8(gpu, &mut enc, &xb, k as u32, &q8).await?;
                        matvec::Input::X8 { x: &xb, q: &q8 }
                    } else {
                        matvec::Input::F32(&xb)
                    };
                    let mut first = 0;
                    for i in 0..3 {
                        matvec::encode_input(gpu, &mut enc, &parts[i], input, &sep[i]).await?;
                        matmul::encode(gpu, &mut enc, &parts[i], &xmb, &mm_sep[i], cols).await?;
                        matmul::encode_rows(
                            gpu,
                            &mut enc,
                            &fused,
                            (first, rows[i]),
                            &xmb,
                            &mm_rows[i],
                            cols,
                        )
                        .await?;
                        first += rows[i];
                    }
                    matvec::encode_split(
                        gpu,
                        &mut enc,
                        &fused,
                        input,
                        [&one[0], &one[1], &one[2]],
                        rows,
                    )
                    .await
                });
                enc.submit();
                if !matches!(r, Ok(true)) {
                    f.push(format!("{ty} fast {fast}: {r:?}"));
                    continue;
                }
                for i in 0..3 {
                    let read = |b: &wgpu::Buffer, len: u32| {
                        pollster::block_on(gpu.read_f32(b, len as usize)).expect("read")
                    };
                    for (a, b, what) in [
                        (read(&sep[i], rows[i]), read(&one[i], rows[i]), "matvec"),
                        (
                            read(&mm_sep[i], rows[i] * cols),
                            read(&mm_rows[i], rows[i] * cols),
                            "matmul",
                        ),
                    ] {
                        let (s, fail) = common::same_as_unfused(
                            &a,
                            &b,
                            &format!("{ty} fast {fast} part {i} {what}"),
                        );
                        total += a.len();
                        same += s;
                        f.extend(fail);
                    }
                }
            }
        }
        eprintln!("split q/k/v: {same} of {total} values bit-identical to the separate ops");
        f
    });
}

/// The measured kernel-family choice is kept per driver version: Mesa 22.3 and 25.0 report the
/// same adapter name, and a choice measured under one must not be applied under the other.
#[test]
fn family_choice_is_keyed_by_driver_version() {
    let Some(file) = tiny_model_file() else {
        return;
    };
    for mut gpu in common::devices() {
        let key = |gpu: &Gpu| {
            wisp::bench::FamilyProbe::new(gpu, file.gguf(), matvec::Precision::Exact)
                .expect("the tiny model has matrices to time")
                .key
        };
        let before = key(&gpu);
        assert!(
            before.contains(&gpu.caps.adapter.name)
                && before.contains(&gpu.caps.adapter.driver_info),
            "{before}"
        );
        gpu.caps.adapter.driver_info = "Mesa 99.0.0 (a newer driver)".into();
        let after = key(&gpu);
        assert!(
            after != before && after.contains("Mesa 99.0.0"),
            "{before} / {after}"
        );
    }
}

/// The probe times the row family with its weights' rows interleaved by eight and in GGUF's
/// order where 8 lanes share x (lavapipe; SwiftShader's 4 get GGUF's order untimed), keeps the
/// faster (the workgroup family reads GGUF's order), and a cached choice restores it; an entry
/// from before layouts were measured is measured again. A layer's ffn_gate and ffn_up of one
/// type are timed as the fused gate+up weight the model runs through the GLU kernel.
#[test]
fn probe_chooses_the_row_layout_and_caches_it() {
    use wisp::bench::{FamilyChoice, FamilyProbe};
    use wisp::gpu::KernelFamily;
    let Some(file) = tiny_model_file() else {
        return;
    };
    for mut gpu in common::devices() {
        let name = gpu.caps.adapter.name.clone();
        let probe = FamilyProbe::new(&gpu, file.gguf(), matvec::Precision::Exact)
            .expect("the tiny model has matrices to time");
        // The tiny model: 2 layers, F16 gate and up of 128 × 64 each.
        assert!(
            probe.key.contains("F16 256x64 glu x2") && !probe.key.contains("F16 128x64 x"),
            "{name}: gate and up are timed as one GLU weight: {}",
            probe.key
        );
        let c = pollster::block_on(probe.measure(&mut gpu)).expect("measures");
        if gpu.caps.share_x() >= 8 {
            let (rows8_ms, gguf_ms) = c.row_layout_ms.expect("both row layouts timed");
            assert!(rows8_ms > 0.0 && gguf_ms > 0.0, "{name}: {c:?}");
            match c.family {
                KernelFamily::Row => assert_eq!(c.rows8, rows8_ms <= gguf_ms, "{name}: {c:?}"),
                KernelFamily::Workgroup => assert!(!c.rows8, "{name}: {c:?}"),
            }
        } else {
            assert!(
                c.row_layout_ms.is_none() && !c.rows8,
                "{name}: GGUF's order only: {c:?}"
            );
        }
        assert!(c.report().contains("GGUF's order"), "{}", c.report());
        let v = c.to_json();
        gpu.set_rows8(!c.rows8);
        assert!(FamilyChoice::apply_cached(&v, &mut gpu), "{name}: {v}");
        assert_eq!(gpu.caps.rows8, c.rows8, "{name}: the cached layout applies");
        let mut old = v.clone();
        old.as_object_mut().expect("an object").remove("rows8");
        assert!(
            !FamilyChoice::apply_cached(&old, &mut gpu),
            "{name}: an entry without a layout is measured again"
        );
    }
}

/// The tiny chat model, opened (`None` where `common::tiny_chat_model` has none).
fn tiny_model_file() -> Option<wisp::gguf::GgufFile> {
    let path = common::tiny_chat_model()?;
    Some(wisp::gguf::GgufFile::open(&path).expect("the tiny chat model opens"))
}
