//! Generation: prefill the prompt (matmul path), decode token by token (matvec path), stream
//! each token's text to a callback as it is decoded, stop at end-of-generation, a stop string,
//! the token budget or when the callback asks to, and time it all.

use super::draft::{DraftCost, DraftKind, DraftModel, Drafter, Lookup, Proposal};
use super::forward::{Model, Output, Want};
use super::sampler::{judge_draft, Dist, Sampler, SamplerConfig};
use super::tokenizer::{StreamDecoder, Tokenizer};
use super::ModelError;
use crate::gpu::Gpu;

/// Seconds on a monotonic clock (`performance.now()` in the browser).
pub fn now_s() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1e3
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenParams {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Generation stops before the first occurrence of any of these in the output text.
    pub stop: Vec<String>,
    /// Report this many of the largest raw logits with each token (forces a logits readback).
    pub top_logits: usize,
    /// Report each token's log-probability and this many of the most likely alternatives
    /// (forces a logits readback); `None`: no log-probabilities.
    pub logprobs: Option<usize>,
    /// Speculative decoding: draft tokens and verify them in one pass over the weights, at
    /// exact precision. Greedy decoding gives the same tokens; sampling, the same distribution.
    pub draft: Option<super::draft::DraftConfig>,
}

impl Default for GenParams {
    fn default() -> GenParams {
        GenParams {
            max_tokens: 128,
            sampler: SamplerConfig::default(),
            stop: Vec::new(),
            top_logits: 0,
            logprobs: None,
            draft: None,
        }
    }
}

/// One generated token, as streamed.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub id: u32,
    /// Text this token completes. Empty while a multi-byte character or a possible stop
    /// string is still open; the held text comes with a later token or in [`GenStats::tail`].
    pub text: String,
    /// The largest raw logits of this step, `(id, logit)`, largest first.
    pub top: Vec<(u32, f32)>,
    /// ln p(id) under the model's distribution (softmax of the raw logits), with
    /// [`GenParams::logprobs`].
    pub logprob: Option<f32>,
    /// The most likely tokens of this step and their log-probabilities, most likely first.
    pub top_logprobs: Vec<(u32, f32)>,
}

/// Restricts which tokens may come next: structured output (a JSON schema) plugs in here.
pub trait TokenConstraint {
    /// Clears the bits of the tokens that may not come next in `allowed` (one bit per token id,
    /// bit `id % 32` of word `id / 32`; every bit set on entry).
    fn mask(&mut self, allowed: &mut [u32]) -> Result<(), String>;
    /// Advances past the chosen token.
    fn commit(&mut self, id: u32) -> Result<(), String>;
    /// The constrained output is complete (generation ends with `stop`).
    fn is_finished(&self) -> bool;
}

/// Errors of a [`TokenConstraint`] during generation.
#[derive(Debug, thiserror::Error)]
#[error("structured output: {0}")]
pub struct ConstraintError(pub String);

/// ln softmax(logits)[i] for each `i` in `ids`, and the `k` most likely tokens with theirs.
pub fn logprobs(logits: &[f32], id: u32, k: usize) -> (f32, Vec<(u32, f32)>) {
    let max = logits
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v - max).exp())
        .sum();
    let lse = f64::from(max) + sum.ln();
    let lp = |v: f32| (f64::from(v) - lse) as f32;
    let chosen = logits
        .get(id as usize)
        .map_or(f32::NEG_INFINITY, |&v| lp(v));
    let top = top_logits(logits, k)
        .into_iter()
        .map(|(i, v)| (i, lp(v)))
        .collect();
    (chosen, top)
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` reached.
    Length,
    /// The model produced an end-of-generation token (not streamed).
    Eog,
    /// A stop string appeared (it and what follows are not streamed).
    Stop,
    /// The callback asked to stop.
    Interrupted,
    /// A constraint (structured output) completed its output.
    Complete,
}

impl Finish {
    /// The OpenAI-style `finish_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Finish::Length => "length",
            Finish::Eog | Finish::Stop | Finish::Complete => "stop",
            Finish::Interrupted => "abort",
        }
    }
}

/// What a generation did and how fast.
#[derive(Clone, Debug, PartialEq)]
pub struct GenStats {
    pub prompt_tokens: usize,
    pub generated: Vec<u32>,
    pub finish: Finish,
    /// Text held back at the end (an incomplete character or a stop-string prefix that never
    /// completed), already part of `text`.
    pub tail: String,
    /// All streamed text plus `tail`.
    pub text: String,
    /// Seconds from the start to the first token (prefill and one sampling).
    pub ttft_s: f64,
    /// Seconds from the first token to the last.
    pub decode_s: f64,
    /// Speculative decoding: draft tokens verified, of them accepted, and the passes over the
    /// weights that produced the tokens after the first (verify passes and plain steps).
    pub drafted: usize,
    pub accepted: usize,
    pub passes: usize,
}

impl GenStats {
    /// Prompt tokens per second of time to first token.
    pub fn prefill_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.ttft_s.max(1e-9)
    }

    /// Tokens per second after the first.
    pub fn decode_tok_s(&self) -> f64 {
        self.generated.len().saturating_sub(1) as f64 / self.decode_s.max(1e-9)
    }

    /// Tokens after the first per pass over the weights (1 without drafting).
    pub fn tokens_per_pass(&self) -> f64 {
        self.generated.len().saturating_sub(1) as f64 / self.passes.max(1) as f64
    }
}

/// Holds back text that might begin a stop string.
struct StopFilter {
    stops: Vec<String>,
    pending: String,
}

impl StopFilter {
    /// Adds `piece`; returns the text safe to emit and whether a stop string was reached.
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        let hit = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = hit {
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return (out, true);
        }
        // Keep the longest suffix of `pending` that is a proper prefix of some stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in self.pending.char_indices() {
                let suffix = &self.pending[i..];
                if suffix.len() < s.len() && s.starts_with(suffix) {
                    keep = keep.max(suffix.len());
                    break;
                }
            }
        }
        let cut = self.pending.len() - keep;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        (out, false)
    }
}

/// The `k` largest logits, largest first.
pub fn top_logits(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(logits.len());
    if k == 0 {
        return Vec::new();
    }
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    idx.select_nth_unstable_by(k - 1, |&a, &b| {
        logits[b as usize].total_cmp(&logits[a as usize])
    });
    let mut top: Vec<(u32, f32)> = idx[..k].iter().map(|&i| (i, logits[i as usize])).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top
}

/// Generates after `prompt`, which continues the tokens already in `model`'s cache (a chat
/// turn) or starts fresh (call [`Model::reset`] first). `on_token` sees each token as it is
/// decoded and returns `false` to stop. The last generated token is not fed to the model, so
/// `model.tokens()` ends with the second-to-last.
pub async fn generate(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<GenStats, ModelError> {
    generate_constrained(model, gpu, tok, prompt, params, None, on_token).await
}

/// [`generate`] with the next token restricted by `constraint` at every step (disallowed
/// tokens get probability 0 before sampling or argmax). Generation ends with
/// [`Finish::Complete`] once the constraint is finished.
pub async fn generate_constrained(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    constraint: Option<&mut dyn TokenConstraint>,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<GenStats, ModelError> {
    generate_full(model, gpu, tok, prompt, params, constraint, None, on_token).await
}

/// [`generate_constrained`] that can draft with a draft model: [`GenParams::draft`] of kind
/// [`DraftKind::Model`] drafts with `draft_model` (an error without one); a lookup draft needs
/// none.
#[allow(clippy::too_many_arguments)]
pub async fn generate_full(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    constraint: Option<&mut dyn TokenConstraint>,
    draft_model: Option<&mut DraftModel>,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<GenStats, ModelError> {
    let mut lookup = None;
    let drafting = match &params.draft {
        None => None,
        Some(d) => match d.kind {
            DraftKind::Lookup => Some(Drafting::Tokens(
                lookup.insert(Lookup::new(d.max)) as &mut dyn Drafter
            )),
            DraftKind::Model => {
                let m = draft_model.ok_or_else(|| {
                    ModelError::Draft("drafting with a draft model, but none is loaded".into())
                })?;
                let greedy = params.sampler.temperature <= 0.0;
                m.start((!greedy).then_some(&params.sampler));
                Some(Drafting::Model(m, d.max))
            }
        },
    };
    // Drafting holds off where verify passes cost more per token than plain steps.
    let cost = drafting.is_some().then(DraftCost::default);
    generate_inner(
        model, gpu, tok, prompt, params, constraint, drafting, cost, on_token,
    )
    .await
}

/// Where drafts come from.
pub enum Drafting<'a> {
    /// A drafter that guesses from the tokens alone (prompt lookup, a script in tests).
    Tokens(&'a mut dyn Drafter),
    /// A draft model, and the draft length at most.
    Model(&'a mut DraftModel, usize),
}

impl Drafting<'_> {
    async fn propose(
        &mut self,
        gpu: &Gpu,
        history: &[u32],
        max: usize,
    ) -> Result<Proposal, ModelError> {
        match self {
            Drafting::Tokens(d) => {
                let tokens = d.propose(history, max);
                let q = tokens.iter().map(|&t| Dist::point(t)).collect();
                Ok(Proposal { tokens, q })
            }
            Drafting::Model(m, most) => m.propose(gpu, history, max.min(*most)).await,
        }
    }

    fn feedback(&mut self, drafted: usize, accepted: usize) {
        match self {
            Drafting::Tokens(d) => d.feedback(drafted, accepted),
            Drafting::Model(m, _) => m.feedback(drafted, accepted),
        }
    }
}

/// [`generate_constrained`] with speculative decoding by `drafting` (instead of what
/// [`GenParams::draft`] names), at exact precision: the same tokens as without drafting when
/// greedy, the same distribution when sampling. Every proposal is verified (no [`DraftCost`]
/// hold), so what happens does not depend on timing.
#[allow(clippy::too_many_arguments)]
pub async fn generate_with_drafter(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    constraint: Option<&mut dyn TokenConstraint>,
    drafting: Drafting<'_>,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<GenStats, ModelError> {
    generate_inner(
        model,
        gpu,
        tok,
        prompt,
        params,
        constraint,
        Some(drafting),
        None,
        on_token,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn generate_inner(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    mut constraint: Option<&mut dyn TokenConstraint>,
    mut drafting: Option<Drafting<'_>>,
    mut cost: Option<DraftCost>,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<GenStats, ModelError> {
    let mut sampler = Sampler::new(params.sampler.clone());
    let greedy = sampler.is_greedy() && params.sampler.repeat_penalty == 1.0;
    // Greedy without log-probabilities: the GPU picks the token (under the constraint's mask,
    // uploaded each step) and 8 bytes come back instead of the logits.
    let plain = greedy && params.top_logits == 0 && params.logprobs.is_none();
    let want = match (plain, &constraint) {
        (true, None) => Want::Argmax,
        (true, Some(_)) => Want::ArgmaxMasked,
        (false, _) => Want::Logits,
    };
    if drafting.is_some() && model.precision() == crate::ops::matvec::Precision::Fast {
        return Err(ModelError::Draft(
            "a verify pass computes its layers as prefill does (exactly), so at `fast` \
             precision it would not give fast decoding's tokens: use exact precision"
                .into(),
        ));
    }
    let n_vocab = model.cfg.n_vocab as usize;
    let mut mask = vec![0u32; n_vocab.div_ceil(32)];
    let mut out = Emitter::new(model.tokens(), prompt, &params.stop);
    let mut input = prompt.to_vec();
    // Tokens, not steps, count against the budget: a verify pass may give several.
    while out.stats.generated.len() < params.max_tokens {
        let step = out.stats.generated.len();
        if step > 0 {
            // The previous token goes in only when another is wanted, and when it fits: a full
            // context ends the generation like the token budget does.
            if model.pos() >= model.cache.shape().ctx {
                out.stats.finish = Finish::Length;
                break;
            }
            let last = *out.stats.generated.last().unwrap_or(&0);
            out.stats.passes += 1;
            let draft_now = cost.as_mut().is_none_or(|c| c.draft_now());
            if let Some(d) = drafting.as_mut().filter(|_| draft_now) {
                // Room for the drafts: in the budget (each accepted draft is a token) and in
                // the context (the last token and the drafts are cached).
                let room = (params.max_tokens - step - 1)
                    .min((model.cache.shape().ctx - model.pos()) as usize - 1);
                let t_draft = now_s();
                let draft = d
                    .propose(gpu, &out.history, room.min(super::draft::MAX_DRAFT))
                    .await?;
                if !draft.tokens.is_empty() {
                    let c = cost.as_mut();
                    let c = c.map(|c| (c, t_draft));
                    let fin = if want == Want::Argmax {
                        speculate(
                            model,
                            gpu,
                            tok,
                            d,
                            c,
                            last,
                            &draft.tokens,
                            &mut out,
                            on_token,
                        )
                        .await?
                    } else {
                        let mut v = Verify {
                            sampler: &mut sampler,
                            constraint: constraint.as_deref_mut(),
                            mask: &mut mask,
                            params,
                        };
                        v.run(model, gpu, tok, d, c, last, &draft, &mut out, on_token)
                            .await?
                    };
                    if let Some(f) = fin {
                        out.stats.finish = f;
                        break;
                    }
                    continue;
                }
            }
            input = vec![last];
        }
        if want == Want::ArgmaxMasked {
            if let Some(c) = constraint.as_deref_mut() {
                mask.fill(u32::MAX);
                c.mask(&mut mask).map_err(ConstraintError)?;
                model.set_token_mask(gpu, &mask)?;
            }
        }
        let t_step = now_s();
        let output = model.forward(gpu, &input, want).await?;
        if let (Some(c), true) = (cost.as_mut(), step > 0) {
            c.plain_step(now_s() - t_step);
        }
        let (id, top, logprob, top_logprobs) = match output {
            Output::Token(id) if id == crate::ops::argmax::ARGMAX_NONE => {
                return Err(ConstraintError("no token is allowed here".into()).into());
            }
            Output::Token(id) => (id, Vec::new(), None, Vec::new()),
            Output::Logits(mut l) => {
                let top = top_logits(&l, params.top_logits);
                let raw = params.logprobs.map(|_| l.clone());
                if let Some(c) = constraint.as_deref_mut() {
                    mask_logits(c, &mut mask, &mut l)?;
                }
                let id = sampler.sample(&l, &out.history);
                // An all-disallowed step: the sampler falls back to token 0; refuse it.
                if constraint.is_some() && l.get(id as usize) == Some(&f32::NEG_INFINITY) {
                    return Err(ConstraintError("no token is allowed here".into()).into());
                }
                match (raw, params.logprobs) {
                    (Some(raw), Some(k)) => {
                        let (lp, tl) = logprobs(&raw, id, k);
                        (id, top, Some(lp), tl)
                    }
                    _ => (id, top, None, Vec::new()),
                }
            }
        };
        if let Some(c) = constraint.as_deref_mut() {
            c.commit(id).map_err(ConstraintError)?;
        }
        let token = Token {
            id,
            text: String::new(),
            top,
            logprob,
            top_logprobs,
        };
        let complete = |_: &Emitter| constraint.as_deref().is_some_and(|c| c.is_finished());
        if let Some(f) = out.emit(tok, token, complete, on_token)? {
            out.stats.finish = f;
            break;
        }
    }
    Ok(out.finish())
}

/// One verify pass: `last` (the last generated token, not yet cached) and `draft` go through
/// the model at once; the drafts up to the first one the model disagrees with are accepted, and
/// the model's own token after them is taken too. The tokens are emitted one by one as a plain
/// step would emit them, and the cache is rolled back to hold what plain decoding's would: every
/// emitted token but the last. Returns why generation ends, if it does.
#[allow(clippy::too_many_arguments)]
async fn speculate(
    model: &mut Model,
    gpu: &Gpu,
    tok: &Tokenizer,
    drafter: &mut Drafting<'_>,
    cost: Option<(&mut DraftCost, f64)>,
    last: u32,
    draft: &[u32],
    out: &mut Emitter,
    on_token: &mut dyn FnMut(&Token) -> bool,
) -> Result<Option<Finish>, ModelError> {
    let pos0 = model.pos() as usize;
    let mut input = Vec::with_capacity(draft.len() + 1);
    input.push(last);
    input.extend_from_slice(draft);
    let picks = model.forward_verify(gpu, &input).await?;
    // picks[i] follows input[i]; draft[i] = input[i + 1] stands where it equals picks[i].
    let accepted = draft.iter().zip(&picks).take_while(|(d, p)| d == p).count();
    drafter.feedback(draft.len(), accepted);
    if let Some((c, t_draft)) = cost {
        c.verify_pass(now_s() - t_draft, accepted + 1);
    }
    out.stats.drafted += draft.len();
    out.stats.accepted += accepted;
    for (i, &id) in picks[..=accepted].iter().enumerate() {
        let token = Token {
            id,
            text: String::new(),
            top: Vec::new(),
            logprob: None,
            top_logprobs: Vec::new(),
        };
        let fin = out.emit(tok, token, |_| false, on_token)?;
        if fin.is_some() || i == accepted {
            // The cache holds `last` and the tokens emitted before this one.
            model.truncate(pos0 + 1 + i);
            return Ok(fin);
        }
    }
    Ok(None)
}

/// A verify pass that reads every position's logits back: sampling (by the speculative
/// sampling rule), log-probabilities, top logits, a repeat penalty or a constraint under
/// drafting. The positions are judged in order, each as a plain step would judge it (the
/// constraint's mask applied, the sampler's distribution taken after the tokens before it), so
/// the constraint only ever commits tokens that are emitted.
struct Verify<'a, 'c> {
    sampler: &'a mut Sampler,
    constraint: Option<&'a mut (dyn TokenConstraint + 'c)>,
    mask: &'a mut [u32],
    params: &'a GenParams,
}

impl Verify<'_, '_> {
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        model: &mut Model,
        gpu: &Gpu,
        tok: &Tokenizer,
        drafter: &mut Drafting<'_>,
        cost: Option<(&mut DraftCost, f64)>,
        last: u32,
        draft: &Proposal,
        out: &mut Emitter,
        on_token: &mut dyn FnMut(&Token) -> bool,
    ) -> Result<Option<Finish>, ModelError> {
        let pos0 = model.pos() as usize;
        let mut input = Vec::with_capacity(draft.tokens.len() + 1);
        input.push(last);
        input.extend_from_slice(&draft.tokens);
        let rows = model.forward_verify_logits(gpu, &input).await?;
        out.stats.drafted += draft.tokens.len();
        let mut fin = None;
        let mut accepted = 0;
        for (i, raw) in rows.iter().enumerate() {
            let mut l = raw.clone();
            if let Some(c) = self.constraint.as_deref_mut() {
                mask_logits(c, self.mask, &mut l)?;
            }
            let p = self.sampler.distribution(&l, &out.history);
            let (id, stands) = match (draft.tokens.get(i), draft.q.get(i)) {
                (Some(&d), Some(q)) => match judge_draft(self.sampler, &p, q, d) {
                    None => (d, true),
                    Some(t) => (t, false),
                },
                _ if self.sampler.is_greedy() || p.total <= 0.0 => (p.ids[0], false),
                _ => (self.sampler.draw(&p), false),
            };
            if self.constraint.is_some() && l.get(id as usize) == Some(&f32::NEG_INFINITY) {
                return Err(ConstraintError("no token is allowed here".into()).into());
            }
            if let Some(c) = self.constraint.as_deref_mut() {
                c.commit(id).map_err(ConstraintError)?;
            }
            let (logprob, top_logprobs) = match self.params.logprobs {
                Some(k) => {
                    let (lp, tl) = logprobs(raw, id, k);
                    (Some(lp), tl)
                }
                None => (None, Vec::new()),
            };
            let token = Token {
                id,
                text: String::new(),
                top: top_logits(raw, self.params.top_logits),
                logprob,
                top_logprobs,
            };
            let constraint = self.constraint.as_deref();
            let complete = |_: &Emitter| constraint.is_some_and(|c| c.is_finished());
            fin = out.emit(tok, token, complete, on_token)?;
            if fin.is_some() || !stands {
                // The cache holds `last` and the tokens emitted before this one.
                model.truncate(pos0 + 1 + i);
                break;
            }
            accepted += 1;
        }
        drafter.feedback(draft.tokens.len(), accepted);
        if let Some((c, t_draft)) = cost {
            c.verify_pass(now_s() - t_draft, accepted + 1);
        }
        out.stats.accepted += accepted;
        Ok(fin)
    }
}

/// Sets the logits of the tokens `constraint` disallows next to −∞ (`mask` is scratch: one bit
/// per token).
fn mask_logits(
    constraint: &mut dyn TokenConstraint,
    mask: &mut [u32],
    logits: &mut [f32],
) -> Result<(), ConstraintError> {
    mask.fill(u32::MAX);
    constraint.mask(mask).map_err(ConstraintError)?;
    for (i, v) in logits.iter_mut().enumerate() {
        if mask[i / 32] >> (i % 32) & 1 == 0 {
            *v = f32::NEG_INFINITY;
        }
    }
    Ok(())
}

/// The output side of a generation: the tokens so far, their streamed text (held back at a
/// possible stop string or an incomplete character), and the statistics.
struct Emitter {
    history: Vec<u32>,
    decoder: StreamDecoder,
    stop: StopFilter,
    stats: GenStats,
    t0: f64,
}

impl Emitter {
    fn new(cached: &[u32], prompt: &[u32], stops: &[String]) -> Emitter {
        let mut history = cached.to_vec();
        history.extend_from_slice(prompt);
        Emitter {
            history,
            decoder: StreamDecoder::new(false),
            stop: StopFilter {
                stops: stops.to_vec(),
                pending: String::new(),
            },
            stats: GenStats {
                prompt_tokens: prompt.len(),
                generated: Vec::new(),
                finish: Finish::Length,
                tail: String::new(),
                text: String::new(),
                ttft_s: 0.0,
                decode_s: 0.0,
                drafted: 0,
                accepted: 0,
                passes: 0,
            },
            t0: now_s(),
        }
    }

    /// Records the next token and streams its text to `on_token` (`token.text` is filled in
    /// here). Returns why generation ends after it, if it does: end of generation (the token is
    /// not streamed), a stop string, `complete` (a finished constraint), or `on_token` asking
    /// to stop.
    fn emit(
        &mut self,
        tok: &Tokenizer,
        mut token: Token,
        complete: impl Fn(&Emitter) -> bool,
        on_token: &mut dyn FnMut(&Token) -> bool,
    ) -> Result<Option<Finish>, ModelError> {
        let t = now_s();
        if self.stats.generated.is_empty() {
            self.stats.ttft_s = t - self.t0;
        } else {
            self.stats.decode_s = t - self.t0 - self.stats.ttft_s;
        }
        let id = token.id;
        self.stats.generated.push(id);
        self.history.push(id);
        if tok.is_eog(id) {
            return Ok(Some(Finish::Eog));
        }
        let piece = self.decoder.push(tok, id)?;
        let (text, hit) = self.stop.push(&piece);
        self.stats.text.push_str(&text);
        token.text = text;
        let go_on = on_token(&token);
        Ok(if hit {
            Some(Finish::Stop)
        } else if complete(self) {
            Some(Finish::Complete)
        } else if !go_on {
            Some(Finish::Interrupted)
        } else {
            None
        })
    }

    /// The statistics, with the text still held back added (unless a stop string ended it).
    fn finish(mut self) -> GenStats {
        if self.stats.finish != Finish::Stop {
            let (rest, _) = self.stop.push(&self.decoder.finish());
            self.stats.tail = rest + &self.stop.pending;
            self.stats.text.push_str(&self.stats.tail);
        }
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool, String) {
        let mut f = StopFilter {
            stops: stops.iter().map(|s| s.to_string()).collect(),
            pending: String::new(),
        };
        let mut out = Vec::new();
        for p in pieces {
            let (t, hit) = f.push(p);
            out.push(t);
            if hit {
                return (out, true, f.pending);
            }
        }
        (out, false, f.pending)
    }

    #[test]
    fn stop_strings_across_tokens() {
        // "User:" split over three tokens: nothing of it is emitted.
        let (out, hit, _) = run(&["User:"], &["Hi", " there\nUs", "er", ": more"]);
        assert_eq!(out, ["Hi", " there\n", "", ""]);
        assert!(hit);
        // A false start is released once it can no longer become the stop string.
        let (out, hit, rest) = run(&["User:"], &["a Us", "ual day"]);
        assert_eq!(out, ["a ", "Usual day"]);
        assert!(!hit);
        assert_eq!(rest, "");
        // Text before the stop string inside one token is kept; the earliest stop wins.
        let (out, hit, _) = run(&["\n\n", "END"], &["one END two\n\n"]);
        assert_eq!(out, ["one "]);
        assert!(hit);
        // A prefix still open at the end stays pending.
        let (_, hit, rest) = run(&["</s>"], &["x</"]);
        assert!(!hit);
        assert_eq!(rest, "</");
        // Multi-byte text is cut at character boundaries.
        let (out, _, rest) = run(&["é!"], &["café"]);
        assert_eq!((out[0].as_str(), rest.as_str()), ("caf", "é"));
    }

    #[test]
    fn top_logits_largest_first() {
        let l = [0.5, 3.0, -1.0, 2.0, 3.0];
        let t = top_logits(&l, 3);
        assert_eq!(t.iter().map(|x| x.1).collect::<Vec<_>>(), [3.0, 3.0, 2.0]);
        assert_eq!(t[2].0, 3);
        assert!(top_logits(&l, 0).is_empty());
        assert_eq!(top_logits(&l, 9).len(), 5);
    }
}
