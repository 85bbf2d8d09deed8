//! Shared by the GPU test binaries: every adapter the machine has, every tier each allows.
//!
//! GPU tests never skip: with no adapter at all they fail. `WISP_TEST_ADAPTERS=llvmpipe,swiftshader`
//! (CI sets it) makes a missing adapter a failure too. To see both software adapters in one
//! process, list both Vulkan ICDs: `VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json:/usr/lib/chromium/vk_swiftshader_icd.json`.

#![allow(dead_code)]

use wisp::gpu::{Gpu, GpuOptions, KernelFamily, Tier};

/// A progress line that shows while `cargo test` runs (the harness captures `eprintln!`, not
/// writes to the stderr handle itself): long tests say what they are doing as they go.
pub fn progress(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "  [progress] {msg}");
}

/// Compares a fused kernel's output with the unfused ops it replaces: the same operations per
/// element, so the same bits up to a compiler's contraction choices (4 ulp). Returns the
/// number of bit-identical values, and the first differing one as a failure.
pub fn same_as_unfused(unfused: &[f32], fused: &[f32], what: &str) -> (usize, Option<String>) {
    let mut same = 0;
    for (i, (u, v)) in unfused.iter().zip(fused).enumerate() {
        same += usize::from(u.to_bits() == v.to_bits());
        if (u - v).abs() > 4.0 * f32::EPSILON * u.abs().max(v.abs()) + 1e-30 {
            return (
                same,
                Some(format!("{what} row {i}: fused {v}, unfused {u}")),
            );
        }
    }
    (same, None)
}

/// One device per adapter, opened at the highest tier it supports.
pub fn devices() -> Vec<Gpu> {
    let adapters = pollster::block_on(Gpu::adapters());
    let mut out = Vec::new();
    for a in adapters {
        let info = a.get_info();
        // wgpu can list the same Vulkan device twice (e.g. through GL too): keep the first of each name.
        if out.iter().any(|g: &Gpu| g.caps.adapter.name == info.name) {
            continue;
        }
        match pollster::block_on(Gpu::from_adapter(a, &GpuOptions::default())) {
            Ok(g) => out.push(g),
            Err(e) => panic!("adapter {} refused a device: {e}", info.name),
        }
    }
    assert!(
        !out.is_empty(),
        "no GPU adapter found: GPU tests need one (install mesa-vulkan-drivers for lavapipe)"
    );
    if let Ok(want) = std::env::var("WISP_TEST_ADAPTERS") {
        for w in want.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            assert!(
                out.iter().any(|g| g
                    .caps
                    .adapter
                    .name
                    .to_lowercase()
                    .contains(&w.to_lowercase())),
                "WISP_TEST_ADAPTERS names '{w}' but the adapters are: {:?}",
                out.iter().map(|g| &g.caps.adapter.name).collect::<Vec<_>>()
            );
        }
    }
    out
}

/// Every tier the device supports, lowest first.
pub fn tiers(gpu: &Gpu) -> Vec<Tier> {
    [Tier::T0, Tier::T1, Tier::T2]
        .into_iter()
        .filter(|&t| t <= gpu.caps.tier)
        .collect()
}

pub const FAMILIES: [KernelFamily; 2] = [KernelFamily::Row, KernelFamily::Workgroup];

/// Runs `f` on every (adapter, tier, family), collecting failures; panics with all of them at the end.
pub fn for_every_config(mut f: impl FnMut(&mut Gpu, &str) -> Vec<String>) {
    let mut failures = Vec::new();
    let mut configs = 0;
    for mut gpu in devices() {
        let max_tier = gpu.caps.tier;
        // Every tier and family with weights in storage buffers; then, at the device's own
        // tier, both families with weights in textures (`WeightStore::Texture`: only the
        // weight loads differ, and they do not depend on the tier). The buffer runs store
        // repacked weights in the layout their family uploads (rows interleaved by eight for
        // the row family, `gpu::ROWS8`); the texture runs in the other one, so that every
        // kernel reads both layouts (prefill's family may differ from decode's).
        let mut runs: Vec<(Tier, KernelFamily, bool)> = tiers(&gpu)
            .into_iter()
            .flat_map(|t| FAMILIES.map(|f| (t, f, false)))
            .collect();
        runs.extend(FAMILIES.map(|f| (max_tier, f, true)));
        for (tier, fam, textures) in runs {
            gpu.set_tier(tier).expect("tier within the device's");
            gpu.set_family(fam);
            gpu.set_weight_textures(textures);
            if textures {
                gpu.set_rows8(fam != KernelFamily::Row);
            }
            let label = format!(
                "{} {:?} {} (x shared by {} lanes, weights in {}, rows {})",
                gpu.caps.adapter.name,
                tier,
                fam.name(),
                gpu.caps.share_x(),
                if textures { "textures" } else { "buffers" },
                if gpu.caps.rows8 {
                    "interleaved by 8"
                } else {
                    "in GGUF's order"
                }
            );
            failures.extend(
                f(&mut gpu, &label)
                    .into_iter()
                    .map(|m| format!("[{label}] {m}")),
            );
            configs += 1;
        }
        gpu.set_tier(max_tier).expect("restore tier");
        gpu.set_weight_textures(false);
    }
    eprintln!("{configs} adapter/tier/family configurations checked");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `$WISP_CACHE` (default `~/.cache/wisp`), where the models are.
pub fn model_cache() -> std::path::PathBuf {
    std::env::var_os("WISP_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/wisp"))
        })
        .unwrap_or_else(|| std::path::PathBuf::from(".cache/wisp"))
}

/// The tiny chat model (scripts/gen_tiny_chat_gguf.py: SmolLM2-Instruct's tokenizer and chat
/// template on a 2-layer, 64-wide llama with random weights; 8 MB, milliseconds per token):
/// every path of a real chat model, for tests of the CLI and the server rather than of output
/// quality. Written into the cache from SmolLM2 when missing (with `$WISP_PY`, else python3).
/// `None`, said on stderr, where SmolLM2 is missing too, unless `WISP_REQUIRE_MODELS` is set.
pub fn tiny_chat_model() -> Option<std::path::PathBuf> {
    let out = model_cache().join("wisp-test-tiny-chat.gguf");
    if out.is_file() {
        return Some(out);
    }
    let src = std::env::var_os("WISP_SMOLLM2_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| model_cache().join("SmolLM2-135M-Instruct.Q4_1.gguf"));
    if !src.is_file() {
        assert!(
            std::env::var_os("WISP_REQUIRE_MODELS").is_none(),
            "the tiny chat model needs SmolLM2: run scripts/fetch-model.sh smollm2"
        );
        eprintln!(
            "SKIPPED: no SmolLM2 at {} to make the tiny chat model from",
            src.display()
        );
        return None;
    }
    // Tests run in parallel: each writes its own file and renames it into place.
    let partial = out.with_extension(format!("{}.partial", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen_tiny_chat_gguf.py");
    let python = std::env::var_os("WISP_PY").unwrap_or_else(|| "python3".into());
    let status = std::process::Command::new(&python)
        .arg(script)
        .arg(&src)
        .arg(&partial)
        .status()
        .unwrap_or_else(|e| panic!("{python:?} {script}: {e}"));
    assert!(
        status.success(),
        "{script} failed ({status}): it needs python's gguf and numpy (scripts/setup.sh)"
    );
    std::fs::rename(&partial, &out).expect("tiny chat model renamed into the cache");
    Some(out)
}
