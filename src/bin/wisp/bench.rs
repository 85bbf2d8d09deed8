//! `wisp bench`: prefill and decode speed of a model, with the adapter's read roofline measured
//! in the same run so decode speed reads as a fraction of what the memory system allows.

use serde_json::json;
use wisp::bench;
use wisp::model::forward::{Model, Want};
use wisp::model::generate::now_s;
use wisp::ops::synth::Rng;

use crate::cli::ModelBenchArgs;
use crate::load::{adapter_json, load_with_draft, Loaded};

/// Seconds for one forward of `ids` from an empty cache (ends with the 8-byte argmax readback).
fn timed_prefill(
    model: &mut Model,
    gpu: &wisp::gpu::Gpu,
    ids: &[u32],
) -> Result<f64, Box<dyn std::error::Error>> {
    model.reset();
    let t = now_s();
    pollster::block_on(model.forward(gpu, ids, Want::Argmax))?;
    Ok(now_s() - t)
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Each kernel's share of the GPU time in %, largest first.
type Shares = Vec<(String, f64)>;

/// Where a timed run's GPU time went: each kernel's share in %, the same split by weight format
/// too ("MatvecRow Q6_K"), largest first, and the number of dispatches.
struct Profile {
    by_op: Shares,
    by_op_format: Shares,
    dispatches: usize,
}

/// Runs `work` with every dispatch timed (timestamp queries, each in its own pass); `None`
/// where the adapter has no timestamp queries.
fn op_shares(
    gpu: &wisp::gpu::Gpu,
    work: impl FnOnce() -> BenchResult<()>,
) -> BenchResult<Option<Profile>> {
    if !gpu.set_profiling(true) {
        return Ok(None);
    }
    let r = work();
    gpu.set_profiling(false);
    let profile = pollster::block_on(gpu.take_profile())?;
    r?;
    let total: f64 = profile.iter().map(|(_, ns)| ns).sum();
    // Labels are "Op TYPE TIER"; the type only matters to weight kernels.
    let group = |words: usize| {
        let mut by: std::collections::BTreeMap<String, f64> = Default::default();
        for (label, ns) in &profile {
            let key: Vec<&str> = label.split_whitespace().take(words).collect();
            *by.entry(key.join(" ")).or_default() += ns;
        }
        let mut rows: Shares = by
            .into_iter()
            .map(|(op, ns)| (op, 100.0 * ns / total.max(1.0)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows
    };
    Ok(Some(Profile {
        by_op: group(1),
        by_op_format: group(2),
        dispatches: profile.len(),
    }))
}

/// "op 12.3%, …" for the human-readable report.
fn share_line(rows: &[(String, f64)]) -> String {
    rows.iter()
        .map(|(op, pct)| format!("{op} {pct:.1}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decode steps timed op by op after the decode run.
const PROFILE_STEPS: u32 = 3;

pub fn run(args: ModelBenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let longest = args.prefill.iter().copied().max().unwrap_or(1).max(1);
    // Room for the prompt, the decode run and the profiled steps after it.
    let mut ctx = longest.max(args.ttft_prompt + args.decode as u32 + 1 + PROFILE_STEPS);
    if args.draft.draft.is_some() {
        // The drafting workloads' prompts (a few hundred tokens) and their output.
        ctx = ctx.max(DRAFT_PROMPT_ROOM + args.decode as u32 + 1);
    }
    let mut m = load_with_draft(&args.model, ctx, args.precision.get(), &args.draft)?;
    let (gpu, model) = (&m.gpu, &mut m.model);
    let n_vocab = model.cfg.n_vocab;
    // Ordinary tokens (ids past the first 1000 are plain words in every supported vocabulary).
    let mut rng = Rng(0x5eed);
    let ids: Vec<u32> = (0..longest)
        .map(|_| {
            1000.min(n_vocab - 1)
                + (rng.next_u64() % u64::from(n_vocab.saturating_sub(1000).max(1))) as u32
        })
        .collect();
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    if wisp::gpu::no_weight_loads() {
        eprintln!(
            "wisp bench: WISP_MEASURE=no-weight-loads: the weight kernels read no weights (a measurement of everything else; the tokens are meaningless)"
        );
    }
    // Warm-up: compiles every pipeline of both paths.
    timed_prefill(model, gpu, &ids[..8.min(ids.len())])?;
    pollster::block_on(model.forward(gpu, &ids[..1], Want::Argmax))?;

    let mut roof = pollster::block_on(bench::roofline(gpu, 128 << 20, args.iters))?.gbs;
    say(format!("read roofline {roof:.2} GB/s"));
    let mut prefill = serde_json::Map::new();
    for &n in &args.prefill {
        let n = n.max(1);
        let t = timed_prefill(model, gpu, &ids[..n as usize])?;
        say(format!(
            "prefill {n}: {:.1} tok/s ({t:.2} s)",
            f64::from(n) / t
        ));
        prefill.insert(n.to_string(), json!(f64::from(n) / t));
    }
    // TTFT: a fresh prompt to the first token; then decode, each step feeding the last token.
    let p = args.ttft_prompt.min(longest) as usize;
    let ttft = timed_prefill(model, gpu, &ids[..p])?;
    let mut tok = ids[p % ids.len()];
    let mut host_ms = Vec::with_capacity(args.decode);
    let before = gpu.counts();
    let t = now_s();
    for _ in 0..args.decode {
        if let wisp::model::forward::Output::Token(next) =
            pollster::block_on(model.forward(gpu, &[tok], Want::Argmax))?
        {
            tok = next;
        }
        host_ms.push(model.host_s * 1e3);
    }
    let decode_s = now_s() - t;
    let steps = gpu.counts().since(&before);
    let per_token = |v: u64| v as f64 / args.decode.max(1) as f64;
    host_ms.sort_by(f64::total_cmp);
    let host_ms_median = host_ms.get(host_ms.len() / 2).copied().unwrap_or(0.0);
    say(format!(
        "per decoded token: {:.1} dispatches, {:.1} compute passes, {:.1} GPU objects created, \
         {host_ms_median:.2} ms of host time to encode and submit (median)",
        per_token(steps.dispatches),
        per_token(steps.passes),
        per_token(steps.objects()),
    ));
    let decode_tok_s = args.decode as f64 / decode_s;
    say(format!(
        "decode {} tokens after {p}: {decode_tok_s:.2} tok/s; time to first token {:.0} ms",
        args.decode,
        ttft * 1e3
    ));
    // Where a decode step's GPU time goes: each dispatch timed (timestamp queries, its own pass),
    // over a few steps, grouped by kernel; then the same for one prefill of the longest prompt.
    let mut op_share = serde_json::Map::new();
    let mut op_format_share = serde_json::Map::new();
    let mut prefill_op_share = serde_json::Map::new();
    let to_json = |rows: Shares| -> serde_json::Map<String, serde_json::Value> {
        rows.into_iter().map(|(op, pct)| (op, json!(pct))).collect()
    };
    if let Some(prof) = op_shares(gpu, || {
        for _ in 0..PROFILE_STEPS {
            if let wisp::model::forward::Output::Token(next) =
                pollster::block_on(model.forward(gpu, &[tok], Want::Argmax))?
            {
                tok = next;
            }
        }
        Ok(())
    })? {
        say(format!(
            "decode step GPU time by op (timestamps, {} dispatches over {PROFILE_STEPS} steps): {}",
            prof.dispatches,
            share_line(&prof.by_op)
        ));
        say(format!(
            "decode step GPU time by op and weight format: {}",
            share_line(&prof.by_op_format)
        ));
        op_share = to_json(prof.by_op);
        op_format_share = to_json(prof.by_op_format);
    }
    let prompt = &ids[..longest as usize];
    if let Some(prof) = op_shares(gpu, || {
        model.reset();
        pollster::block_on(model.forward(gpu, prompt, Want::Argmax))?;
        Ok(())
    })? {
        say(format!(
            "prefill {longest} GPU time by op (timestamps, {} dispatches): {}",
            prof.dispatches,
            share_line(&prof.by_op)
        ));
        prefill_op_share = to_json(prof.by_op);
    }
    // Speculative decoding's verify pass (the last token and n − 1 drafts through the model at
    // once, the head's argmax at every position) against a decode step, at the same position:
    // what a pass over n tokens costs in decode steps.
    let verify_ratios = verify_cost(model, gpu, tok)?;
    say(format!(
        "verify pass of n tokens, in decode steps: {}",
        verify_ratios
            .iter()
            .map(|(n, r)| format!("n = {n}: {r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Software adapters drift: the roofline again, the higher value counts (ratios err low).
    roof = roof.max(pollster::block_on(bench::roofline(gpu, 128 << 20, args.iters))?.gbs);
    let shape = model.cache.shape();
    // K and V of every layer, read at the mean position of the decode run.
    let mean_pos = p as u64 + args.decode as u64 / 2;
    let kv_bytes = 2
        * u64::from(shape.n_layers)
        * u64::from(shape.n_kv_heads)
        * u64::from(shape.head_dim)
        * u64::from(shape.dtype.bytes())
        * mean_pos;
    let bytes_per_token = model.weights.decode_bytes() + kv_bytes;
    let achieved = bytes_per_token as f64 * decode_tok_s / 1e9;
    let pct = 100.0 * achieved / roof;
    let mut report = json!({
        "adapter": adapter_json(&gpu.caps),
        "model": m.file.gguf().get_str("general.name").unwrap_or_default(),
        "prefill_tok_s": prefill,
        "decode_tok_s": decode_tok_s,
        "decode_tokens": args.decode,
        "ttft_ms": ttft * 1e3,
        "ttft_prompt_tokens": p,
        "bytes_per_token": bytes_per_token,
        "weight_bytes_per_token": model.weights.decode_bytes(),
        "decode_gbs": achieved,
        "roofline_gbs": roof,
        "decode_pct_of_roofline": pct,
        "precision": args.precision.get().name(),
        "compile_ms": model.compile_s * 1e3,
        "dispatches_per_token": per_token(steps.dispatches),
        "passes_per_token": per_token(steps.passes),
        "gpu_objects_per_token": per_token(steps.objects()),
        "host_ms_per_token": host_ms_median,
        "op_share_pct": op_share,
        "op_format_share_pct": op_format_share,
        "prefill_op_share_pct": prefill_op_share,
        "verify_pass_in_steps": verify_ratios
            .iter()
            .map(|(n, r)| (n.to_string(), json!(r)))
            .collect::<serde_json::Map<_, _>>(),
    });
    let adapter_name = gpu.caps.adapter.name.clone();
    if let Some(cfg) = args.draft.config() {
        let what = args.draft.describe().unwrap_or_default();
        let rows = draft_bench(&mut m, &cfg, args.decode.max(2))?;
        for r in &rows {
            say(format!(
                "drafting by {what} (up to {}), {}: plain {:.2} tok/s, drafted {:.2} tok/s = {:.2}×; \
                 {} of {} drafts accepted, {:.2} tokens per pass; same tokens: {}",
                cfg.max,
                r["workload"].as_str().unwrap_or_default(),
                r["plain_tok_s"].as_f64().unwrap_or(0.0),
                r["drafted_tok_s"].as_f64().unwrap_or(0.0),
                r["speedup"].as_f64().unwrap_or(0.0),
                r["accepted"],
                r["drafted"],
                r["tokens_per_pass"].as_f64().unwrap_or(0.0),
                r["same_tokens"],
            ));
        }
        report["drafting"] = json!({"draft": what, "draft_max": cfg.max, "workloads": rows});
    }
    if args.json {
        println!("{report}");
    } else {
        // The result on stdout (the details above are on stderr), for scripts/main.sh's summary.
        println!(
            "decode {decode_tok_s:.2} tok/s on {adapter_name}: {:.1} MB read per token = {achieved:.2} GB/s = {pct:.1}% of the {roof:.2} GB/s read roofline",
            bytes_per_token as f64 / 1e6
        );
    }
    Ok(())
}

/// Token counts a verify pass is timed at by [`verify_cost`].
const VERIFY_SIZES: [usize; 3] = [2, 5, 9];

/// The time of a verify pass over n tokens (`Model::forward_verify`) over that of a decode step,
/// for each of [`VERIFY_SIZES`] that fits the context, at the model's current position (cut
/// back to leave room for the largest; best of 3 steps, best of 2 passes; the cache is rolled
/// back after each).
fn verify_cost(
    model: &mut Model,
    gpu: &wisp::gpu::Gpu,
    tok: u32,
) -> Result<Vec<(usize, f64)>, Box<dyn std::error::Error>> {
    // Room for the largest pass after the cached positions: the cache is cut back if need be.
    let ctx = model.cache.shape().ctx as usize;
    let largest = VERIFY_SIZES[VERIFY_SIZES.len() - 1];
    model.truncate(ctx.saturating_sub(largest));
    let pos = model.pos() as usize;
    let room = ctx.saturating_sub(pos);
    let mut best = |n: usize, reps: usize| -> Result<f64, Box<dyn std::error::Error>> {
        let input = vec![tok; n];
        let mut t_best = f64::INFINITY;
        for _ in 0..reps {
            let t = now_s();
            if n == 1 {
                pollster::block_on(model.forward(gpu, &input, Want::Argmax))?;
            } else {
                pollster::block_on(model.forward_verify(gpu, &input))?;
            }
            t_best = t_best.min(now_s() - t);
            model.truncate(pos);
        }
        Ok(t_best)
    };
    let step = best(1, 3)?;
    let mut out = Vec::new();
    for n in VERIFY_SIZES.into_iter().filter(|&n| n <= room) {
        out.push((n, best(n, 2)? / step));
    }
    Ok(out)
}

/// Prompt positions kept for the drafting workloads.
const DRAFT_PROMPT_ROOM: u32 = 400;

/// `wisp bench --draft`'s workloads: text that repeats its prompt (a code listing given in the
/// prompt, to be written again with one change: the input-grounded case prompt lookup is for),
/// and free text (a story, which rarely repeats).
const DRAFT_WORKLOADS: [(&str, &str); 2] = [
    (
        "input-grounded",
        "class Account:\n    def __init__(self, owner, total=0):\n        self.owner = owner\n        \
         self.total = total\n\n    def deposit(self, value):\n        if value <= 0:\n            \
         raise ValueError(\"deposit must be positive\")\n        self.total += value\n        \
         return self.total\n\n    def withdraw(self, value):\n        if value > self.total:\n            \
         raise ValueError(\"not enough money\")\n        self.total -= value\n        \
         return self.total\n\n    def __repr__(self):\n        \
         return f\"Account({self.owner!r}, {self.total})\"\n\n\n# The same class again, with \
         `total` renamed to `balance`:\n\nclass Account:\n",
    ),
    (
        "free text",
        "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    ),
];

/// Each drafting workload decoded plainly and with drafts, alternating, twice each (the faster
/// of each counts: software adapters drift), from the same prompt: decode tok/s of both, the
/// drafts verified and accepted, tokens per pass, and whether the tokens are the same.
fn draft_bench(
    m: &mut Loaded,
    cfg: &wisp::model::draft::DraftConfig,
    n: usize,
) -> BenchResult<Vec<serde_json::Value>> {
    use wisp::model::generate::{generate_full, GenParams, GenStats};
    let mut rows = Vec::new();
    for (name, text) in DRAFT_WORKLOADS {
        let prompt = m.tokenizer.encode(text, true)?;
        let mut run = |drafted: bool| -> BenchResult<GenStats> {
            let params = GenParams {
                max_tokens: n,
                draft: drafted.then(|| cfg.clone()),
                ..GenParams::default()
            };
            m.model.reset();
            let Loaded {
                model,
                gpu,
                tokenizer,
                draft,
                ..
            } = &mut *m;
            Ok(pollster::block_on(generate_full(
                model,
                gpu,
                tokenizer,
                &prompt,
                &params,
                None,
                draft.as_mut(),
                &mut |_| true,
            ))?)
        };
        let mut plain: Option<GenStats> = None;
        let mut spec: Option<GenStats> = None;
        let faster = |best: Option<GenStats>, s: GenStats| match best {
            Some(b) if b.decode_tok_s() >= s.decode_tok_s() => Some(b),
            _ => Some(s),
        };
        for _ in 0..2 {
            plain = faster(plain, run(false)?);
            spec = faster(spec, run(true)?);
        }
        let (Some(a), Some(b)) = (plain, spec) else {
            continue;
        };
        rows.push(json!({
            "workload": name,
            "prompt_tokens": prompt.len(),
            "tokens": b.generated.len(),
            "plain_tok_s": a.decode_tok_s(),
            "drafted_tok_s": b.decode_tok_s(),
            "speedup": b.decode_tok_s() / a.decode_tok_s().max(1e-9),
            "drafted": b.drafted,
            "accepted": b.accepted,
            "acceptance": b.accepted as f64 / b.drafted.max(1) as f64,
            "tokens_per_pass": b.tokens_per_pass(),
            "same_tokens": a.generated == b.generated,
        }));
    }
    Ok(rows)
}
