//! `wisp run`: generate text from a prompt on the GPU, streaming tokens as they are decoded.

use std::io::Write;
use std::time::Instant;

use serde_json::json;
use wisp::gguf::GgufFile;
use wisp::gpu::{Gpu, GpuOptions};
use wisp::model::forward::{Model, Output, Want};
use wisp::model::sampler::{Sampler, SamplerConfig};
use wisp::model::tokenizer::{StreamDecoder, Tokenizer};

use crate::cli::RunArgs;

/// Parses `--prompt-ids 2,14946,3324`.
fn parse_ids(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("'{t}' is not a token id"))
        })
        .collect()
}

pub fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let path = args.model.path()?;
    let file = GgufFile::open(&path)?;
    let gpu = pollster::block_on(Gpu::new(&GpuOptions::from_env()?))?;
    let mut last = Instant::now();
    let mut model = pollster::block_on(Model::load(&gpu, &file, args.ctx, &mut |done, total| {
        if last.elapsed().as_millis() > 500 || done == total {
            last = Instant::now();
            eprint!("\rloading {} / {} MiB", done >> 20, total >> 20);
        }
    }))?;
    eprintln!();
    let tokenizer = Tokenizer::from_gguf(file.gguf())?;
    let prompt: Vec<u32> = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => parse_ids(ids)?,
        (None, Some(text)) => tokenizer.encode(text, true)?,
        (None, None) => return Err("give a prompt with -p or --prompt-ids".into()),
    };
    let mut text_out = StreamDecoder::new(false);
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        seed: args.seed,
        ..SamplerConfig::default()
    });
    let want = if sampler.is_greedy() && args.repeat_penalty == 1.0 && args.top_logits == 0 {
        Want::Argmax
    } else {
        Want::Logits
    };
    let mut history = prompt.clone();
    let mut input = prompt.clone();
    let t0 = Instant::now();
    let mut ttft = 0.0;
    let mut generated = 0;
    let mut stdout = std::io::stdout();
    for step in 0..args.n {
        let out = pollster::block_on(model.forward(&gpu, &input, want))?;
        let (id, top) = match out {
            Output::Token(id) => (id, Vec::new()),
            Output::Logits(l) => {
                let mut idx: Vec<usize> = (0..l.len()).collect();
                let k = args.top_logits.min(l.len());
                idx.select_nth_unstable_by(k.saturating_sub(1).min(l.len() - 1), |&a, &b| {
                    l[b].total_cmp(&l[a])
                });
                let mut top: Vec<(usize, f32)> = idx[..k].iter().map(|&i| (i, l[i])).collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1));
                (sampler.sample(&l, &history), top)
            }
        };
        if step == 0 {
            ttft = t0.elapsed().as_secs_f64();
        }
        generated += 1;
        history.push(id);
        input = vec![id];
        let piece = text_out.push(&tokenizer, id)?;
        if tokenizer.is_eog(id) {
            break;
        }
        if args.json {
            let mut line = json!({"id": id, "text": piece});
            if args.top_logits > 0 {
                line["top"] = json!(top.iter().map(|&(i, v)| json!([i, v])).collect::<Vec<_>>());
            }
            println!("{line}");
        } else {
            print!("{piece}");
            stdout.flush()?;
        }
    }
    let total = t0.elapsed().as_secs_f64();
    let decode_s = (total - ttft).max(1e-9);
    let summary = json!({
        "prompt_tokens": prompt.len(), "generated_tokens": generated,
        "prefill_tok_s": prompt.len() as f64 / ttft.max(1e-9),
        "decode_tok_s": (generated.max(1) - 1) as f64 / decode_s, "ttft_ms": ttft * 1e3,
    });
    if args.json {
        println!("{summary}");
    } else {
        println!();
        eprintln!("{summary}");
    }
    Ok(())
}
