//! `wisp run`: generate text from a prompt on the GPU, streaming tokens as they are decoded.

use std::io::Write;

use serde_json::json;
use wisp::model::generate::{generate_full, Finish, GenParams};
use wisp::model::sampler::SamplerConfig;

use crate::cli::{RunArgs, SampleArgs};
use crate::load::load_with_draft;

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
    let mut m = load_with_draft(&args.model, args.ctx, args.precision.get(), &args.draft)?;
    let prompt = args.prompt.tokens(&m.tokenizer)?;
    if prompt.len() as u64 >= u64::from(args.ctx) {
        return Err(format!(
            "the prompt has {} tokens and the context holds {} (a reply needs at least one more \
             position): raise --ctx or shorten the prompt",
            prompt.len(),
            args.ctx
        )
        .into());
    }
    let params = GenParams {
        max_tokens: args.n,
        sampler: args.sample.sampler(),
        stop: args.stop.clone(),
        top_logits: if args.json { args.top_logits } else { 0 },
        logprobs: None,
        draft: args.draft.config(),
    };
    let mut stdout = std::io::stdout();
    let mut io_err = None;
    let stats = pollster::block_on(generate_full(
        &mut m.model,
        &m.gpu,
        &m.tokenizer,
        &prompt,
        &params,
        None,
        m.draft.as_mut(),
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
    let mut summary = json!({
        "prompt_tokens": stats.prompt_tokens, "generated_tokens": stats.generated.len(),
        "prefill_tok_s": stats.prefill_tok_s(), "decode_tok_s": stats.decode_tok_s(),
        "ttft_ms": stats.ttft_s * 1e3, "finish_reason": stats.finish.reason(),
    });
    if params.draft.is_some() {
        summary["drafted"] = json!(stats.drafted);
        summary["accepted"] = json!(stats.accepted);
        summary["tokens_per_pass"] = json!(stats.tokens_per_pass());
    }
    if args.json {
        if !stats.tail.is_empty() {
            println!("{}", json!({"text": stats.tail}));
        }
        println!("{summary}");
    } else {
        println!("{}", stats.tail);
        let why = match stats.finish {
            Finish::Length if stats.generated.len() < args.n => {
                " (the context is full: raise --ctx for longer replies)"
            }
            _ => "",
        };
        let drafting = if params.draft.is_some() {
            format!(
                "; drafted {}, accepted {}, {:.2} tokens per pass",
                stats.drafted,
                stats.accepted,
                stats.tokens_per_pass()
            )
        } else {
            String::new()
        };
        eprintln!(
            "[{} prompt tokens, {} generated; {:.0} ms to the first token, {:.1} tok/s prefill, \
             {:.2} tok/s decode{drafting}; finish: {}{why}]",
            stats.prompt_tokens,
            stats.generated.len(),
            stats.ttft_s * 1e3,
            stats.prefill_tok_s(),
            stats.decode_tok_s(),
            stats.finish.reason()
        );
    }
    Ok(())
}
