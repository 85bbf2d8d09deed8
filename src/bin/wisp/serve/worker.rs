//! The engine thread of `wisp serve`: one model, one GPU, one request at a time, in arrival
//! order. Each request reuses the KV cache of the previous one for their shared token prefix.

use std::sync::mpsc::Receiver;

use tokio::sync::mpsc::UnboundedSender;
use wisp::model::chat::{encode_prompt, ChatTemplate, Message};
use wisp::model::generate::{generate_constrained, Finish, GenParams, TokenConstraint};
use wisp::model::session::{fit_messages, reuse_prefix};
use wisp::model::tokenizer::Tokenizer;
use wisp::model::ModelError;

use super::api::{ApiError, Settings};
use crate::load::Loaded;
use wisp::model::grammar::{Grammar, GrammarError};

/// What to continue from.
pub enum Input {
    Chat(Vec<Message>),
    Text(String),
    Ids(Vec<u32>),
}

/// One queued request.
pub struct Job {
    pub input: Input,
    pub settings: Settings,
    /// Log-probabilities with this many alternatives.
    pub logprobs: Option<usize>,
    /// A JSON schema the output must follow (`json_object` is `{"type": "object"}`).
    pub schema: Option<serde_json::Value>,
    pub events: UnboundedSender<Event>,
}

/// A token with its log-probability, as the logprobs fields show it.
#[derive(Clone, Debug)]
pub struct TokenLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// What the engine reports for a request, in order: `Start`, `Token`s, `Done`, or an `Error`.
#[derive(Debug)]
pub enum Event {
    Start {
        prompt_tokens: usize,
        cached_tokens: usize,
    },
    Token {
        text: String,
        logprob: Option<TokenLogprob>,
        top: Vec<TokenLogprob>,
    },
    Done {
        /// Text held back until the end (an open stop-string prefix or character).
        tail: String,
        finish_reason: &'static str,
        completion_tokens: usize,
    },
    Error(ApiError),
}

/// What `/health` reports about the engine.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EngineStatus {
    /// A request is being generated now.
    pub busy: bool,
    /// Requests waiting behind it.
    pub queued: usize,
    /// Requests finished (including failed and cancelled ones).
    pub served: u64,
    /// Requests whose client left: skipped while queued or stopped mid-generation.
    pub cancelled: u64,
    /// The last finished generation: its `finish_reason` and completion tokens.
    pub last_finish_reason: Option<&'static str>,
    pub last_completion_tokens: usize,
}

pub type SharedStatus = std::sync::Arc<std::sync::Mutex<EngineStatus>>;

pub struct Worker {
    pub status: SharedStatus,
    pub loaded: Loaded,
    pub template: ChatTemplate,
    pub ctx: u32,
    /// Drop the oldest turns of a chat that does not fit (`--context-shift`).
    pub shift: bool,
    /// Structured output's view of the vocabulary, built at the first request that needs it.
    pub grammar: Option<Grammar>,
}

fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::ContextFull { needed, ctx } => ApiError::invalid(
            format!(
                "this model's context holds {ctx} tokens, but the prompt and the reply need {needed} \
                 (shorten the messages, lower max_tokens, or start the server with --context-shift)"
            ),
            Some("messages"),
        )
        .with_code("context_length_exceeded"),
        ModelError::BadToken { .. } => ApiError::invalid(e.to_string(), Some("prompt")),
        ModelError::Chat(e) => ApiError::invalid(e.to_string(), Some("messages")),
        other => ApiError::server(other.to_string()),
    }
}

impl Worker {
    /// Serves jobs until every sender is gone. A job whose client already left is skipped.
    pub fn run(mut self, jobs: Receiver<Job>) {
        for job in jobs {
            self.update(|s| s.queued = s.queued.saturating_sub(1));
            if job.events.is_closed() {
                self.update(|s| {
                    s.served += 1;
                    s.cancelled += 1;
                });
                continue;
            }
            self.update(|s| s.busy = true);
            let r = self.serve(&job);
            if let Err(e) = r {
                // The cache may hold a half-run step: forget it.
                self.loaded.model.reset();
                let _ = job.events.send(Event::Error(e));
            }
            self.update(|s| {
                s.busy = false;
                s.served += 1;
            });
        }
    }

    fn update(&self, f: impl FnOnce(&mut EngineStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn serve(&mut self, job: &Job) -> Result<(), ApiError> {
        let ctx = self.ctx;
        let tok = &self.loaded.tokenizer;
        // Room kept for the reply when shifting: what was asked for, at most half the context.
        let reserve = if self.shift {
            job.settings
                .max_tokens
                .map_or(ctx / 2, |m| (m as u32).min(ctx / 2))
        } else {
            1
        };
        let ids = match &job.input {
            Input::Chat(messages) => {
                let cached = self.loaded.model.tokens();
                fit_messages(
                    &self.template,
                    tok,
                    messages,
                    ctx,
                    reserve,
                    self.shift,
                    cached,
                )
                .map_err(model_error)?
                .ids
            }
            Input::Text(t) => encode_prompt(tok, t).map_err(|e| model_error(e.into()))?,
            Input::Ids(ids) => ids.clone(),
        };
        if ids.is_empty() {
            return Err(ApiError::invalid("the prompt is empty", Some("prompt")));
        }
        if ids.len() as u64 >= u64::from(ctx) {
            return Err(model_error(ModelError::ContextFull {
                needed: ids.len() as u64 + 1,
                ctx,
            }));
        }
        let room = (ctx as usize) - ids.len();
        let max_tokens = job.settings.max_tokens.unwrap_or(room).min(room).max(1);
        let mut constraint = match &job.schema {
            Some(s) => {
                if self.grammar.is_none() {
                    let n_vocab = self.loaded.model.cfg.n_vocab as usize;
                    self.grammar = Some(
                        Grammar::new(tok, n_vocab).map_err(|e| ApiError::server(e.to_string()))?,
                    );
                }
                let g = self
                    .grammar
                    .as_ref()
                    .ok_or_else(|| ApiError::server("no grammar"))?;
                Some(g.json_schema(s).map_err(|e| match e {
                    GrammarError::Schema(m) => ApiError::invalid(
                        format!("response_format: the JSON schema cannot be used: {m}"),
                        Some("response_format"),
                    ),
                    other => ApiError::server(other.to_string()),
                })?)
            }
            None => None,
        };
        let cached = reuse_prefix(&mut self.loaded.model, &ids);
        let _ = job.events.send(Event::Start {
            prompt_tokens: ids.len(),
            cached_tokens: cached,
        });
        let params = GenParams {
            max_tokens,
            sampler: job.settings.sampler.clone(),
            stop: job.settings.stop.clone(),
            top_logits: 0,
            logprobs: job.logprobs,
        };
        let events = &job.events;
        let Loaded {
            model,
            gpu,
            tokenizer,
            ..
        } = &mut self.loaded;
        let tok: &Tokenizer = tokenizer;
        let stats = pollster::block_on(generate_constrained(
            model,
            gpu,
            tok,
            &ids[cached..],
            &params,
            constraint.as_mut().map(|c| c as &mut dyn TokenConstraint),
            &mut |t| {
                let _ = events.send(Event::Token {
                    text: t.text.clone(),
                    logprob: t.logprob.map(|lp| piece(tok, t.id, lp)),
                    top: t
                        .top_logprobs
                        .iter()
                        .map(|&(id, lp)| piece(tok, id, lp))
                        .collect(),
                });
                // A client that left stops the generation at the next token.
                !events.is_closed()
            },
        ))
        .map_err(model_error)?;
        self.update(|s| {
            s.last_finish_reason = Some(stats.finish.reason());
            s.last_completion_tokens = stats.generated.len();
            s.cancelled += u64::from(stats.finish == Finish::Interrupted);
        });
        let _ = events.send(Event::Done {
            tail: stats.tail.clone(),
            finish_reason: stats.finish.reason(),
            completion_tokens: stats.generated.len(),
        });
        Ok(())
    }
}

/// A token's text and bytes with its log-probability.
fn piece(tok: &Tokenizer, id: u32, logprob: f32) -> TokenLogprob {
    let bytes = tok.piece(id).map(<[u8]>::to_vec).unwrap_or_default();
    TokenLogprob {
        token: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
        logprob,
    }
}
