//! `wisp run`: generate text from a prompt on the GPU, streaming tokens as they are decoded.

use std::io::Write;

use serde_json::json;
use wisp::model::generate::{generate, GenParams};
use wisp::model::sampler::SamplerConfig;

use crate::cli::{RunArgs, SampleArgs};
use crate::load::load;

impl SampleArgs {
    /// The sampler these options describe.
    pub fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplerConfig::default()
        }
    }
}

pub fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = load(&args.model, args.ctx, args.precision.get())?;
    let prompt = args.prompt.tokens(&m.tokenizer)?;
    let params = GenParams {
        max_tokens: args.n,
        sampler: args.sample.sampler(),
        stop: args.stop.clone(),
        top_logits: if args.json { args.top_logits } else { 0 },
        logprobs: None,
    };
    let mut stdout = std::io::stdout();
    let mut io_err = None;
    let stats = pollster::block_on(generate(
        &mut m.model,
        &m.gpu,
        &m.tokenizer,
        &prompt,
        &params,
        &mut |t| {
            let r = if args.json {
                let mut line = json!({"id": t.id, "text": t.text});
                if params.top_logits > 0 {
                    line["top"] = json!(t
                        .top
                        .iter()
                        .map(|&(i, v)| json!([i, v]))
                        .collect::<Vec<_>>());
                }
                writeln!(stdout, "{line}")
            } else {
                write!(stdout, "{}", t.text).and_then(|()| stdout.flush())
            };
            // A closed stdout (e.g. `| head`) ends generation.
            io_err = r.err();
            io_err.is_none()
        },
    ))?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    let summary = json!({
        "prompt_tokens": stats.prompt_tokens, "generated_tokens": stats.generated.len(),
        "prefill_tok_s": stats.prefill_tok_s(), "decode_tok_s": stats.decode_tok_s(),
        "ttft_ms": stats.ttft_s * 1e3, "finish_reason": stats.finish.reason(),
    });
    if args.json {
        if !stats.tail.is_empty() {
            println!("{}", json!({"text": stats.tail}));
        }
        println!("{summary}");
    } else {
        println!("{}", stats.tail);
        eprintln!("{summary}");
    }
    Ok(())
}
