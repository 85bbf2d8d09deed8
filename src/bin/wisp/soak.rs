//! `wisp soak`: many generations in one process, the way a long-running app or server uses the
//! engine (chat turns that reuse the KV cache and shift the context, resets, replies stopped
//! after their first token, greedy and sampled decoding, log-probabilities, JSON-schema output),
//! with the memory measured after a warm-up and at the end. Fails when the process's resident
//! memory (on lavapipe and SwiftShader this holds the GPU's memory too) or the GPU memory the
//! engine allocated grew by more than `--max-growth` percent.

use std::io::Write;

use wisp::model::chat::{ChatTemplate, Message};
use wisp::model::generate::{generate_constrained, GenParams, TokenConstraint};
use wisp::model::grammar::Grammar;
use wisp::model::sampler::SamplerConfig;
use wisp::model::session::{fit_messages, reuse_prefix};

use crate::cli::SoakArgs;
use crate::load::load;

/// Resident memory of this process in bytes (`/proc/self/statm`); `None` where there is none.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Memory figures at one moment.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    rss: Option<u64>,
    /// Bytes of every GPU buffer the engine has created so far (weights, cache, activations,
    /// parameters, readbacks).
    gpu_bytes: u64,
    gpu_objects: u64,
}

fn snapshot(gpu: &wisp::gpu::Gpu) -> Snapshot {
    let c = gpu.counts();
    Snapshot {
        rss: rss_bytes(),
        gpu_bytes: c.buffer_bytes,
        gpu_objects: c.objects(),
    }
}

fn growth_pct(start: u64, end: u64) -> f64 {
    (end as f64 - start as f64) / (start.max(1) as f64) * 100.0
}

const QUESTIONS: &[&str] = &[
    "What is the capital of France?",
    "Name three colors.",
    "Write one sentence about the sea.",
    "What is 2 + 2?",
    "Say hello in Spanish.",
    "Give me a word that rhymes with cat.",
    "What do bees make?",
];

pub fn run(args: SoakArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = load(&args.model, args.ctx, args.precision.get())?;
    let template = ChatTemplate::for_model(&m.tokenizer)?;
    let n_vocab = m.model.cfg.n_vocab as usize;
    let grammar = Grammar::new(&m.tokenizer, n_vocab)?;
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 12}},
        "required": ["answer"],
        "additionalProperties": false
    });
    let system = Message::new("system", "You are a helpful assistant. Answer briefly.");
    let mut messages = vec![system.clone()];
    // The warm-up runs every kind of turn once (the kinds repeat within 14 turns).
    let warmup = (args.n / 10).max(14).min(args.n);
    let mut start = None;
    let (mut tokens, mut resets, mut stopped, mut shifted) = (0usize, 0usize, 0usize, 0usize);
    let t0 = std::time::Instant::now();
    let mut err = std::io::stderr();
    for i in 0..args.n {
        if i == warmup {
            start = Some(snapshot(&m.gpu));
        }
        // Every 10th turn starts the conversation over (`/reset`).
        if i % 10 == 9 {
            messages.truncate(1);
            m.model.reset();
            resets += 1;
        }
        messages.push(Message::new("user", QUESTIONS[i % QUESTIONS.len()]));
        let sampled = i % 3 == 1;
        let params = GenParams {
            max_tokens: args.max_tokens,
            sampler: SamplerConfig {
                temperature: if sampled { 0.8 } else { 0.0 },
                top_p: if sampled { 0.9 } else { 1.0 },
                seed: i as u64,
                ..SamplerConfig::default()
            },
            stop: Vec::new(),
            top_logits: 0,
            logprobs: (i % 11 == 5).then_some(2),
            draft: None,
        };
        let fitted = fit_messages(
            &template,
            &m.tokenizer,
            &messages,
            args.ctx,
            (args.max_tokens as u32).min(args.ctx / 2),
            true,
            m.model.tokens(),
        )?;
        if fitted.dropped > 0 {
            // What the context dropped leaves the client's history too.
            messages.drain(1..1 + fitted.dropped);
            shifted += 1;
        }
        let keep = reuse_prefix(&mut m.model, &fitted.ids);
        let mut json = (i % 13 == 6)
            .then(|| grammar.json_schema(&schema))
            .transpose()?;
        // Every 7th reply is stopped after its first token, as a client that goes away.
        let stop_early = i % 7 == 3;
        let mut n = 0usize;
        let stats = pollster::block_on(generate_constrained(
            &mut m.model,
            &m.gpu,
            &m.tokenizer,
            &fitted.ids[keep..],
            &params,
            json.as_mut().map(|c| c as &mut dyn TokenConstraint),
            &mut |_| {
                n += 1;
                !(stop_early && n >= 1)
            },
        ))?;
        stopped += usize::from(stop_early);
        tokens += stats.generated.len();
        messages.push(Message::new("assistant", &stats.text));
        if (i + 1) % 50 == 0 || i + 1 == args.n {
            let s = snapshot(&m.gpu);
            let _ = writeln!(
                err,
                "soak: {} of {} generations, {tokens} tokens, {:.0} s, resident {} MiB, GPU {:.1} MiB",
                i + 1,
                args.n,
                t0.elapsed().as_secs_f64(),
                s.rss.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
                s.gpu_bytes as f64 / 1048576.0
            );
        }
    }
    let end = snapshot(&m.gpu);
    let start = start.unwrap_or(end);
    let rss_growth = match (start.rss, end.rss) {
        (Some(a), Some(b)) => Some(growth_pct(a, b)),
        _ => None,
    };
    let gpu_growth = growth_pct(start.gpu_bytes, end.gpu_bytes);
    let report = serde_json::json!({
        "generations": args.n,
        "warmup_generations": warmup,
        "tokens": tokens,
        "resets": resets,
        "stopped_after_first_token": stopped,
        "context_shifts": shifted,
        "elapsed_s": t0.elapsed().as_secs_f64(),
        "resident_bytes": {"start": start.rss, "end": end.rss, "growth_pct": rss_growth},
        "gpu_bytes": {"start": start.gpu_bytes, "end": end.gpu_bytes, "growth_pct": gpu_growth},
        "gpu_objects_created_after_warmup": end.gpu_objects - start.gpu_objects,
        "max_growth_pct": args.max_growth,
    });
    println!("{report}");
    let mut bad = Vec::new();
    if let Some(g) = rss_growth.filter(|g| *g > f64::from(args.max_growth)) {
        bad.push(format!("resident memory grew {g:.1}%"));
    }
    if gpu_growth > f64::from(args.max_growth) {
        bad.push(format!("GPU memory grew {gpu_growth:.1}%"));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "soak failed: {} over {} generations (limit {}%)",
            bad.join(", "),
            args.n,
            args.max_growth
        )
        .into())
    }
}
