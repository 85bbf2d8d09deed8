//! Drafters for speculative decoding: cheap guesses at the next few tokens, which one verify
//! pass over the weights ([`Model::forward_verify`](super::forward::Model::forward_verify))
//! accepts or rejects. A greedy generation keeps the longest prefix of a draft that the model
//! itself would have produced, plus the model's own next token, so the text is the same with or
//! without drafting; only the number of passes over the weights changes.

use super::forward::{Model, Output, Want};
use super::sampler::{Dist, Sampler, SamplerConfig};
use super::tokenizer::Tokenizer;
use super::ModelError;
use crate::gpu::Gpu;

/// Proposes tokens that may come next.
pub trait Drafter {
    /// Up to `max` tokens that may follow `history` (the tokens so far: cached, prompt and
    /// output). Empty: no guess (the next step decodes one token).
    fn propose(&mut self, history: &[u32], max: usize) -> Vec<u32>;
    /// How many of the last proposal's `drafted` tokens the model accepted.
    fn feedback(&mut self, drafted: usize, accepted: usize);
}

/// Which drafter a generation uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DraftKind {
    /// Prompt lookup: n-gram matches in the tokens so far ([`Lookup`]).
    Lookup,
    /// A smaller model with the same vocabulary ([`DraftModel`], given to
    /// [`generate_full`](super::generate::generate_full) beside the parameters).
    Model,
}

/// Drafting settings of a generation ([`GenParams::draft`](super::generate::GenParams::draft)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftConfig {
    pub kind: DraftKind,
    /// Tokens per draft at most (1 to [`MAX_DRAFT`]).
    pub max: usize,
}

/// Drafts per verify pass at most: a pass takes the last accepted token and the drafts.
pub const MAX_DRAFT: usize = super::forward::MAX_VERIFY - 1;

/// Longest n-gram [`Lookup`] matches.
const MAX_NGRAM: usize = 3;

/// Prompt lookup (as llama.cpp's `lookup` and vLLM's n-gram proposer do it): the last n tokens
/// (n = 3, 2, 1, longest first) are looked up in the earlier tokens, most recent occurrence
/// first, and what followed them is the draft. Text that repeats its input (quoting, editing
/// code, extraction) drafts well; other text rarely matches.
///
/// The draft length adapts: after a fully accepted draft it grows by 2 (up to the maximum), after
/// a partial one it becomes one more than what was accepted. Drafts that are rejected outright
/// make the drafter pause for 1, 2, 4, … up to 16 steps, so text that does not repeat pays for
/// few verify passes.
#[derive(Clone, Debug)]
pub struct Lookup {
    max: usize,
    len: usize,
    /// Drafts rejected outright in a row.
    misses: u32,
    /// Steps left without drafting.
    pause: usize,
}

impl Lookup {
    /// A drafter of at most `max` tokens per draft (clamped to 1..=[`MAX_DRAFT`]).
    pub fn new(max: usize) -> Lookup {
        let max = max.clamp(1, MAX_DRAFT);
        Lookup {
            max,
            len: max.min(4),
            misses: 0,
            pause: 0,
        }
    }
}

impl Drafter for Lookup {
    fn propose(&mut self, history: &[u32], max: usize) -> Vec<u32> {
        if self.pause > 0 {
            self.pause -= 1;
            return Vec::new();
        }
        let k = self.len.min(max);
        if k == 0 {
            return Vec::new();
        }
        let n_max = MAX_NGRAM.min(history.len().saturating_sub(1));
        for n in (1..=n_max).rev() {
            let key = &history[history.len() - n..];
            // Earlier occurrences only, most recent first, with at least one token after them.
            let found = (0..history.len() - n)
                .rev()
                .find(|&j| &history[j..j + n] == key);
            if let Some(j) = found {
                let from = j + n;
                let to = (from + k).min(history.len());
                return history[from..to].to_vec();
            }
        }
        Vec::new()
    }

    fn feedback(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        if accepted == drafted {
            self.len = (self.len + 2).min(self.max);
        } else {
            self.len = (accepted + 1).min(self.max);
        }
        if accepted == 0 {
            self.misses += 1;
            self.pause = 1usize << (self.misses - 1).min(4);
        } else {
            self.misses = 0;
        }
    }
}

/// Whether drafting pays on this adapter, measured as a generation runs: the time per token of
/// verify passes against the time of a plain decode step (moving averages). While verify passes
/// cost more per token, drafting is held off for 8 steps, then 16, 32, … up to 128, and tried
/// again (judged on its own); once a pass pays, the hold starts over at 8. On an adapter where a pass over several
/// tokens costs nearly what one token costs (a GPU, bound by reading the weights), drafts that
/// are accepted pay; where it costs several steps (a CPU adapter, bound by arithmetic), drafting
/// mostly stays off and costs little.
#[derive(Clone, Debug, Default)]
pub struct DraftCost {
    step_s: Option<f64>,
    pass_s_per_token: Option<f64>,
    hold: usize,
    backoff: usize,
}

/// Steps [`DraftCost`] holds drafting off after the first pass that did not pay, and at most
/// (the hold doubles from one to the next).
const HOLD_FIRST: usize = 8;
const HOLD_MOST: usize = 128;

/// Weight of the newest sample in [`DraftCost`]'s moving averages.
const EMA_NEW: f64 = 0.3;

fn ema(old: Option<f64>, new: f64) -> f64 {
    old.map_or(new, |o| o + EMA_NEW * (new - o))
}

impl DraftCost {
    /// A plain decode step took `s` seconds.
    pub fn plain_step(&mut self, s: f64) {
        self.step_s = Some(ema(self.step_s, s));
    }

    /// Drafting and verifying took `s` seconds and gave `tokens` tokens (the accepted drafts and
    /// the model's own next token).
    pub fn verify_pass(&mut self, s: f64, tokens: usize) {
        let per = ema(self.pass_s_per_token, s / tokens.max(1) as f64);
        self.pass_s_per_token = Some(per);
        if let Some(step) = self.step_s {
            if per > step {
                self.hold = self.backoff.max(HOLD_FIRST);
                self.backoff = (self.hold * 2).min(HOLD_MOST);
                // The pass after the hold is judged on its own.
                self.pass_s_per_token = None;
            } else {
                self.backoff = HOLD_FIRST;
            }
        }
    }

    /// Whether to draft at this step (else one token is decoded plainly). Not before a plain
    /// step has been timed: without it no pass can be judged.
    pub fn draft_now(&mut self) -> bool {
        if self.step_s.is_none() {
            return false;
        }
        if self.hold > 0 {
            self.hold -= 1;
            false
        } else {
            true
        }
    }
}

/// A draft model: a second, smaller model with the target's vocabulary, on the same device,
/// with its own KV cache. Before each proposal its cache is cut back to the longest prefix it
/// shares with the tokens so far (so it rolls back with the target's), the tokens it has not
/// seen are run, and it decodes the draft: greedily when the target decodes greedily, else
/// sampled with the target's settings from its own distribution, which it reports for the
/// speculative sampling rule. The draft length adapts as [`Lookup`]'s does, without pauses.
pub struct DraftModel {
    pub model: Model,
    max: usize,
    len: usize,
    sampler: Option<Sampler>,
}

/// A proposal: the drafted tokens and, for each, the distribution it was drawn from (a point
/// mass for a greedy or lookup draft).
pub struct Proposal {
    pub tokens: Vec<u32>,
    pub q: Vec<Dist>,
}

impl DraftModel {
    /// `model` drafts for a target whose tokenizer is `target`; `own` is the draft model's. The
    /// vocabularies must be the same, token for token; otherwise the error names the first
    /// token that differs.
    pub fn new(
        model: Model,
        own: &Tokenizer,
        target: &Tokenizer,
        max: usize,
    ) -> Result<DraftModel, ModelError> {
        check_vocab(own, target)?;
        let max = max.clamp(1, MAX_DRAFT);
        Ok(DraftModel {
            model,
            max,
            len: max.min(4),
            sampler: None,
        })
    }

    /// Draft tokens per proposal at most.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Sets the sampling of the next generation's drafts (`None`: greedy). The draft sampler is
    /// seeded apart from the target's.
    pub fn start(&mut self, sampling: Option<&SamplerConfig>) {
        self.sampler = sampling.map(|c| {
            Sampler::new(SamplerConfig {
                seed: c.seed ^ 0xd7af_7d7a_f7d7_af7d,
                ..c.clone()
            })
        });
        self.len = self.max.min(4);
    }

    /// Up to `max` tokens that may follow `history`, from the draft model.
    pub async fn propose(
        &mut self,
        gpu: &Gpu,
        history: &[u32],
        max: usize,
    ) -> Result<Proposal, ModelError> {
        let ctx = self.model.cache.shape().ctx as usize;
        // The history goes in, then all drafts but the last.
        let k = self
            .len
            .min(max)
            .min((ctx + 1).saturating_sub(history.len()));
        if k == 0 || history.is_empty() {
            return Ok(Proposal {
                tokens: Vec::new(),
                q: Vec::new(),
            });
        }
        let same = self
            .model
            .tokens()
            .iter()
            .zip(history)
            .take_while(|(a, b)| a == b)
            .count()
            .min(history.len() - 1);
        self.model.truncate(same);
        let mut input = history[same..].to_vec();
        let mut tokens = Vec::with_capacity(k);
        let mut q = Vec::with_capacity(k);
        let mut seen = history.to_vec();
        for _ in 0..k {
            let want = if self.sampler.is_some() {
                Want::Logits
            } else {
                Want::Argmax
            };
            let (id, dist) = match (
                self.model.forward(gpu, &input, want).await?,
                &mut self.sampler,
            ) {
                (Output::Token(id), _) => (id, Dist::point(id)),
                (Output::Logits(l), Some(s)) => {
                    let d = s.distribution(&l, &seen);
                    (s.draw(&d), d)
                }
                (Output::Logits(l), None) => {
                    let id = super::sampler::argmax(&l);
                    (id, Dist::point(id))
                }
            };
            tokens.push(id);
            q.push(dist);
            seen.push(id);
            input = vec![id];
        }
        Ok(Proposal { tokens, q })
    }

    /// How many of the last proposal's `drafted` tokens the target accepted.
    pub fn feedback(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        self.len = if accepted == drafted {
            (self.len + 2).min(self.max)
        } else {
            (accepted + 1).min(self.max)
        };
    }
}

/// Refuses a draft vocabulary that is not the target's, naming the first token that differs.
pub fn check_vocab(draft: &Tokenizer, target: &Tokenizer) -> Result<(), ModelError> {
    let n = draft.vocab_size().max(target.vocab_size());
    for id in 0..n as u32 {
        let (a, b) = (draft.token_text(id), target.token_text(id));
        if a != b {
            let show = |t: Option<&str>| t.map_or("no token".to_string(), |t| format!("{t:?}"));
            return Err(ModelError::Draft(format!(
                "the draft model's vocabulary ({} tokens) is not the target's ({} tokens): token \
                 {id} is {} in the draft model and {} in the target",
                draft.vocab_size(),
                target.vocab_size(),
                show(a),
                show(b)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_proposes_what_followed_the_longest_recent_match() {
        let mut d = Lookup::new(4);
        // "7 8 9" occurred before, followed by 10 11 12 13.
        let h = [1, 7, 8, 9, 10, 11, 12, 13, 2, 7, 8, 9];
        assert_eq!(d.propose(&h, 8), [10, 11, 12, 13]);
        // The budget caps the draft.
        assert_eq!(d.propose(&h, 2), [10, 11]);
        // The most recent occurrence wins: "5 6" was followed by 1, then by 2.
        let h = [5, 6, 1, 9, 5, 6, 2, 9, 5, 6];
        assert_eq!(d.propose(&h, 1), [2]);
        // A longer match wins over a more recent shorter one: "3 4" then 30; "4" then 40.
        let h = [3, 4, 30, 31, 4, 40, 41, 3, 4];
        assert_eq!(d.propose(&h, 2), [30, 31]);
        // No match, or nothing after the match: no draft.
        assert!(d.propose(&[1, 2, 3], 4).is_empty());
        assert!(d.propose(&[5], 4).is_empty());
        assert!(d.propose(&[], 4).is_empty());
        // A draft ends where the history does.
        assert_eq!(d.propose(&[4, 5, 4], 4), [5, 4]);
    }

    #[test]
    fn lookup_adapts_its_length_and_pauses_after_misses() {
        let h: Vec<u32> = (0..40).map(|i| i % 10).collect();
        let mut d = Lookup::new(8);
        assert_eq!(d.propose(&h, 16).len(), 4);
        d.feedback(4, 4);
        assert_eq!(d.propose(&h, 16).len(), 6);
        d.feedback(6, 6);
        d.feedback(8, 8);
        assert_eq!(d.propose(&h, 16).len(), 8, "capped at the maximum");
        d.feedback(8, 2);
        assert_eq!(d.propose(&h, 16).len(), 3);
        // Rejected outright: pause 1, then 2, then 4 steps.
        for pause in [1, 2, 4] {
            d.feedback(3, 0);
            for _ in 0..pause {
                assert!(d.propose(&h, 16).is_empty());
            }
            assert_eq!(d.propose(&h, 16).len(), 1);
        }
        // An accepted token ends the pauses.
        d.feedback(1, 1);
        assert_eq!(d.propose(&h, 16).len(), 3);
        assert_eq!(Lookup::new(0).max, 1);
        assert_eq!(Lookup::new(99).max, MAX_DRAFT);
    }

    #[test]
    fn drafting_holds_off_while_verify_passes_cost_more_per_token() {
        let mut c = DraftCost::default();
        // No plain step measured yet: no drafting.
        assert!(!c.draft_now());
        c.plain_step(0.1);
        assert!(c.draft_now());
        // 0.3 s for 2 tokens against 0.1 s a step: hold 8 steps, then 16.
        for hold in [8, 16, 32] {
            c.verify_pass(0.3, 2);
            for _ in 0..hold {
                assert!(!c.draft_now());
            }
            assert!(c.draft_now());
        }
        // Passes that pay (cheap per token): no hold, and the next hold starts at 4 again.
        c.verify_pass(0.05, 6);
        c.verify_pass(0.05, 6);
        c.verify_pass(0.05, 6);
        assert!(c.draft_now());
        c.verify_pass(5.0, 1);
        for _ in 0..8 {
            assert!(!c.draft_now());
        }
        assert!(c.draft_now());
    }
}
