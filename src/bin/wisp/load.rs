//! Shared by the model commands: open the GPU and a model with a progress bar, the adapter as JSON.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use wisp::gguf::GgufFile;
use wisp::gpu::{Capabilities, Gpu, GpuOptions};
use wisp::model::forward::Model;
use wisp::model::tokenizer::Tokenizer;

use crate::cli::{DraftArgs, DraftSource, ModelArg, PromptArgs};
use wisp::model::draft::DraftModel;

/// A model ready to run: its file (memory-mapped), the GPU, the weights and the tokenizer.
pub struct Loaded {
    pub file: GgufFile,
    pub gpu: Gpu,
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// A draft model for speculative decoding, on the same device (`--draft PATH`).
    pub draft: Option<DraftModel>,
}

/// Opens the GPU and uploads the model, showing bytes uploaded on stderr.
pub fn load(
    arg: &ModelArg,
    ctx: u32,
    precision: wisp::ops::matvec::Precision,
) -> Result<Loaded, Box<dyn std::error::Error>> {
    let path = arg.path()?;
    let file = GgufFile::open(&path)?;
    let opts = GpuOptions::from_env()?;
    let mut gpu = pollster::block_on(Gpu::new(&opts))?;
    if opts.family.is_none() {
        choose_family(&mut gpu, file.gguf(), precision);
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "loading {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let mut model = pollster::block_on(Model::load(&gpu, &file, ctx, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }))?;
    pollster::block_on(model.set_precision(&gpu, precision))?;
    bar.finish_and_clear();
    let tokenizer = Tokenizer::from_gguf(file.gguf())?;
    Ok(Loaded {
        file,
        gpu,
        model,
        tokenizer,
        draft: None,
    })
}

/// [`load`], then the draft model that `draft` names (if it names one) on the same device,
/// with a cache of `ctx` positions; a draft vocabulary that is not the model's is refused,
/// naming the first token that differs.
pub fn load_with_draft(
    arg: &ModelArg,
    ctx: u32,
    precision: wisp::ops::matvec::Precision,
    draft: &DraftArgs,
) -> Result<Loaded, Box<dyn std::error::Error>> {
    let mut loaded = load(arg, ctx, precision)?;
    let path = match &draft.draft {
        Some(DraftSource::Model(p)) => Some(p.clone()),
        Some(DraftSource::Itself) => Some(arg.path()?),
        _ => None,
    };
    if let Some(path) = &path {
        let file =
            GgufFile::open(path).map_err(|e| format!("draft model {}: {e}", path.display()))?;
        let own = Tokenizer::from_gguf(file.gguf())?;
        wisp::model::draft::check_vocab(&own, &loaded.tokenizer)?;
        let model = pollster::block_on(Model::load(&loaded.gpu, &file, ctx, &mut |_, _| {}))
            .map_err(|e| format!("draft model {}: {e}", path.display()))?;
        let dm = DraftModel::new(model, &own, &loaded.tokenizer, usize::from(draft.draft_max))?;
        loaded.draft = Some(dm);
    }
    Ok(loaded)
}

/// Where the measured kernel family of each adapter is kept: `$WISP_CACHE/kernel-family.json`.
fn family_cache() -> Option<std::path::PathBuf> {
    std::env::var_os("WISP_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/wisp"))
        })
        .map(|d| d.join("kernel-family.json"))
}

/// Picks the kernel family by measuring, not by device type ([`wisp::bench::FamilyProbe`]): the
/// first time a model's shapes run on an adapter at a precision, both families are timed and the
/// faster is kept in the cache file for later runs. `WISP_KERNELS` overrides (the caller skips
/// this). A failure keeps the default: the choice is an optimization, never a reason not to run.
fn choose_family(gpu: &mut Gpu, g: &wisp::gguf::Gguf, precision: wisp::ops::matvec::Precision) {
    use wisp::bench::{FamilyChoice, FamilyProbe};
    let Some(probe) = FamilyProbe::new(gpu, g, precision) else {
        return;
    };
    let path = family_cache();
    let mut cache: serde_json::Map<String, serde_json::Value> = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    if cache
        .get(&probe.key)
        .is_some_and(|v| FamilyChoice::apply_cached(v, gpu))
    {
        return;
    }
    eprintln!("measuring this GPU once (a few seconds); kept for next time");
    let Ok(choice) = pollster::block_on(probe.measure(gpu)) else {
        return;
    };
    choice.apply(gpu);
    if crate::cli::verbose() {
        eprintln!(
            "kernel families for {} at {} precision: {}",
            gpu.caps.adapter.name,
            precision.name(),
            choice.report()
        );
    }
    cache.insert(probe.key, choice.to_json());
    if let Some(p) = path {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&p, serde_json::Value::Object(cache).to_string());
    }
}

/// The tier in words, with what it means on this adapter: T0 = no shader-f16 (where subgroups
/// may still share x's loads: SwiftShader), T1 = + shader-f16, T2 = + subgroups.
pub fn tier_label(c: &Capabilities) -> String {
    use wisp::gpu::Tier;
    let sizes = if c.subgroup_min_size == c.subgroup_max_size {
        c.subgroup_min_size.to_string()
    } else {
        format!("{}..{}", c.subgroup_min_size, c.subgroup_max_size)
    };
    match c.tier {
        Tier::T2 => format!("T2 (shader-f16, subgroups of {sizes})"),
        Tier::T1 => "T1 (shader-f16, no subgroups)".into(),
        Tier::T0 if c.share_x() > 0 => format!(
            "T0 (no shader-f16), with subgroups of {} for shared loads",
            c.share_x()
        ),
        // The adapter has f16: only WISP_TIER keeps it at T0.
        Tier::T0 if c.shader_f16 => "T0 (no shader-f16, no subgroups: capped by WISP_TIER)".into(),
        Tier::T0 => "T0 (no shader-f16, no subgroups)".into(),
    }
}

/// The adapter and the capabilities Wisp planned with, for JSON reports.
pub fn adapter_json(c: &Capabilities) -> serde_json::Value {
    json!({
        "name": c.adapter.name, "backend": c.adapter.backend, "device_type": c.adapter.device_type,
        "driver": c.adapter.driver, "tier": format!("{:?}", c.tier), "tier_label": tier_label(c), "shader_f16": c.shader_f16,
        "subgroups": c.subgroups, "subgroup_min_size": c.subgroup_min_size, "subgroup_max_size": c.subgroup_max_size,
        "max_storage_binding": c.max_binding, "chosen_family": c.family.name(),
        "chosen_prefill_family": c.prefill_family.name(),
        "weights_in_textures": c.texture_types().iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "rows_interleaved": c.rows8,
        "weights_loaded": !wisp::gpu::no_weight_loads(),
    })
}

/// Parses `--prompt-ids 2,14946,3324`.
pub fn parse_ids(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{t}' is not a token id"))
        })
        .collect()
}

impl PromptArgs {
    /// The prompt tokens from `-p TEXT` (BOS as the model's metadata says) or `--prompt-ids`.
    pub fn tokens(&self, tokenizer: &Tokenizer) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
        let p = match (&self.prompt_ids, &self.prompt) {
            (Some(ids), _) => ids.0.clone(),
            (None, Some(text)) => tokenizer.encode(text, true)?,
            (None, None) => return Err("give a prompt with -p or --prompt-ids".into()),
        };
        if p.is_empty() {
            return Err("the prompt is empty (no tokens)".into());
        }
        Ok(p)
    }
}
