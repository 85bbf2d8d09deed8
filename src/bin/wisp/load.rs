//! Shared by the model commands: open the GPU and a model with a progress bar, the adapter as JSON.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use wisp::gguf::GgufFile;
use wisp::gpu::{Capabilities, Gpu, GpuOptions};
use wisp::model::forward::Model;
use wisp::model::tokenizer::Tokenizer;

use crate::cli::{ModelArg, PromptArgs};

/// A model ready to run: its file (memory-mapped), the GPU, the weights and the tokenizer.
pub struct Loaded {
    pub file: GgufFile,
    pub gpu: Gpu,
    pub model: Model,
    pub tokenizer: Tokenizer,
}

/// Opens the GPU and uploads the model, showing bytes uploaded on stderr.
pub fn load(arg: &ModelArg, ctx: u32) -> Result<Loaded, Box<dyn std::error::Error>> {
    let path = arg.path()?;
    let file = GgufFile::open(&path)?;
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
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
    let model = pollster::block_on(Model::load(&gpu, &file, ctx, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }))?;
    bar.finish_and_clear();
    let tokenizer = Tokenizer::from_gguf(file.gguf())?;
    Ok(Loaded {
        file,
        gpu,
        model,
        tokenizer,
    })
}

/// The adapter and the capabilities Wisp planned with, for JSON reports.
pub fn adapter_json(c: &Capabilities) -> serde_json::Value {
    json!({
        "name": c.adapter.name, "backend": c.adapter.backend, "device_type": c.adapter.device_type,
        "driver": c.adapter.driver, "tier": format!("{:?}", c.tier), "shader_f16": c.shader_f16,
        "subgroups": c.subgroups, "subgroup_min_size": c.subgroup_min_size, "subgroup_max_size": c.subgroup_max_size,
        "max_storage_binding": c.max_binding, "chosen_family": c.family.name(),
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
            (Some(ids), _) => parse_ids(ids)?,
            (None, Some(text)) => tokenizer.encode(text, true)?,
            (None, None) => return Err("give a prompt with -p or --prompt-ids".into()),
        };
        if p.is_empty() {
            return Err("the prompt is empty (no tokens)".into());
        }
        Ok(p)
    }
}
