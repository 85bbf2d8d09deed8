//! The engine thread of `wisp serve`: one model, one GPU, one request at a time, in arrival
//! order. Each request reuses the KV cache of the previous one for their shared token prefix.

use std::sync::mpsc::Receiver;

use tokio::sync::mpsc::UnboundedSender;
use wisp::model::chat::{encode_prompt, ChatTemplate, Message};
use wisp::model::generate::{generate_full, Finish, GenParams, TokenConstraint};
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
        /// As llama-server reports them: prompt and predicted tokens and milliseconds, and the
        /// draft tokens verified and accepted (speculative decoding).
        timings: serde_json::Value,
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
    /// GPU devices lost so far; after each the model was loaded again on a new device.
    pub device_losses: u64,
    /// Why the last reload after a device loss failed (the server then answers 503).
    pub reload_error: Option<String>,
    /// Speculative decoding: what drafts (`lookup` or the draft model's file), and the draft
    /// tokens verified and accepted over all requests.
    pub draft: Option<String>,
    pub drafted: u64,
    pub accepted: u64,
}

/// Opens a new device and loads the model again (after a device loss).
pub type Reload = Box<dyn Fn() -> Result<Loaded, String> + Send>;

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
    pub reload: Reload,
    /// Speculative decoding (`--draft`); a draft model is in `loaded.draft`.
    pub draft: Option<wisp::model::draft::DraftConfig>,
}

/// The `code` of the error a request gets when the device is lost under it.
const DEVICE_LOST: &str = "device_lost";

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
        ModelError::Gpu(wisp::gpu::GpuError::DeviceLost(reason)) => ApiError::server(format!(
            "the GPU device was lost ({reason}); the server is loading the model on a new \
             device: retry the request"
        ))
        .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
        .with_code(DEVICE_LOST),
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
            let r = if let Some(why) = self.status_reload_error() {
                Err(ApiError::server(format!(
                    "the GPU device was lost and loading the model again failed: {why}"
                ))
                .with_status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                .with_code(DEVICE_LOST))
            } else {
                self.serve(&job)
            };
            if let Err(e) = r {
                let lost = e.code == Some(DEVICE_LOST);
                // The cache may hold a half-run step: forget it.
                self.loaded.model.reset();
                let _ = job.events.send(Event::Error(e));
                if lost {
                    self.recover();
                }
            }
            self.update(|s| {
                s.busy = false;
                s.served += 1;
            });
        }
    }

    /// After a device loss: a new device and the model loaded on it, so later requests are
    /// served without a restart. A failed reload is kept in the status and retried at the next
    /// request.
    fn recover(&mut self) {
        eprintln!("serve: the GPU device was lost; loading the model on a new device");
        self.update(|s| s.device_losses += 1);
        match (self.reload)() {
            Ok(l) => {
                self.loaded = l;
                self.update(|s| s.reload_error = None);
                eprintln!("serve: model loaded again");
            }
            Err(e) => {
                eprintln!("serve: loading the model again failed: {e}");
                self.update(|s| s.reload_error = Some(e));
            }
        }
    }

    fn status_reload_error(&mut self) -> Option<String> {
        let why = self.status.lock().ok()?.reload_error.clone()?;
        // Try again: the driver may be back.
        match (self.reload)() {
            Ok(l) => {
                self.loaded = l;
                self.update(|s| s.reload_error = None);
                None
            }
            Err(e) => {
                self.update(|s| s.reload_error = Some(e.clone()));
                Some(format!("{why}; again: {e}"))
            }
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
        let precision = self.loaded.model.precision();
        let params = GenParams {
            max_tokens,
            sampler: job.settings.sampler.clone(),
            stop: job.settings.stop.clone(),
            top_logits: 0,
            logprobs: job.logprobs,
            // Drafting runs at exact precision (`serve` refuses --draft with fast at start).
            draft: self
                .draft
                .clone()
                .filter(|_| precision == wisp::ops::matvec::Precision::Exact),
        };
        let events = &job.events;
        let Loaded {
            model,
            gpu,
            tokenizer,
            draft,
            ..
        } = &mut self.loaded;
        let tok: &Tokenizer = tokenizer;
        let stats = pollster::block_on(generate_full(
            model,
            gpu,
            tok,
            &ids[cached..],
            &params,
            constraint.as_mut().map(|c| c as &mut dyn TokenConstraint),
            draft.as_mut(),
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
            s.drafted += stats.drafted as u64;
            s.accepted += stats.accepted as u64;
        });
        let n = stats.generated.len();
        let (prompt_n, prompt_ms) = (ids.len() - cached, stats.ttft_s * 1e3);
        let predicted_ms = stats.decode_s * 1e3;
        let per_s = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
        let mut timings = serde_json::json!({
            "cache_n": cached,
            "prompt_n": prompt_n,
            "prompt_ms": prompt_ms,
            "prompt_per_second": per_s(prompt_n, prompt_ms),
            // Tokens after the first, over the time after it (the first comes with the prompt).
            "predicted_n": n,
            "predicted_ms": predicted_ms,
            "predicted_per_second": per_s(n.saturating_sub(1), predicted_ms),
        });
        if params.draft.is_some() {
            timings["draft_n"] = stats.drafted.into();
            timings["draft_n_accepted"] = stats.accepted.into();
        }
        let _ = events.send(Event::Done {
            tail: stats.tail.clone(),
            finish_reason: stats.finish.reason(),
            completion_tokens: n,
            timings,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ModelArg;

    /// SmolLM2-135M-Instruct from the cache (`scripts/fetch-model.sh smollm2`); with
    /// `WISP_REQUIRE_MODELS=1` (the test script) its absence fails instead of skipping.
    fn smollm2() -> Option<std::path::PathBuf> {
        let p = std::env::var_os("WISP_SMOLLM2_MODEL")
            .map(std::path::PathBuf::from)
            .or_else(|| crate::cli::cached_model(crate::cli::CHAT_MODEL));
        if p.is_none() && std::env::var_os("WISP_REQUIRE_MODELS").is_some() {
            panic!("SmolLM2-135M-Instruct is missing: scripts/fetch-model.sh smollm2");
        }
        p
    }

    fn job(events: UnboundedSender<Event>) -> Job {
        Job {
            input: Input::Ids(vec![1, 9690, 198, 2683, 314]),
            settings: Settings {
                max_tokens: Some(3),
                sampler: wisp::model::sampler::SamplerConfig::default(),
                stop: Vec::new(),
            },
            logprobs: None,
            schema: None,
            events,
        }
    }

    /// Runs one job; returns its event names and generated text, or the error.
    fn serve_one(
        jobs: &std::sync::mpsc::SyncSender<Job>,
        status: &SharedStatus,
    ) -> Result<usize, ApiError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let served = status.lock().map(|s| s.served).unwrap_or(0);
        jobs.send(job(tx)).expect("engine alive");
        let mut tokens = 0;
        loop {
            match rx.blocking_recv() {
                Some(Event::Token { .. }) => tokens += 1,
                Some(Event::Done { .. }) => break,
                Some(Event::Error(e)) => {
                    // Wait for the engine to finish its recovery before the next job.
                    while status.lock().map(|s| s.served).unwrap_or(0) == served {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    return Err(e);
                }
                Some(Event::Start { .. }) => {}
                None => panic!("the engine dropped the job"),
            }
        }
        Ok(tokens)
    }

    /// A device lost under the server (forced with `device.destroy()` between requests) fails
    /// the next request with 503 `device_lost`; the engine then loads the model on a new device
    /// and serves the request after it.
    #[test]
    fn serve_recovers_from_a_lost_device() {
        let Some(path) = smollm2() else {
            eprintln!("skipped: no SmolLM2 model");
            return;
        };
        let arg = ModelArg { model: Some(path) };
        let reload_arg = arg.clone();
        let precision = wisp::ops::matvec::Precision::Exact;
        let loaded = crate::load::load(&arg, 64, precision).expect("loads");
        let device = loaded.gpu.device.clone();
        let template = ChatTemplate::for_model(&loaded.tokenizer).expect("template");
        let status = SharedStatus::default();
        let worker = Worker {
            status: status.clone(),
            loaded,
            template,
            ctx: 64,
            shift: false,
            grammar: None,
            reload: Box::new(move || {
                crate::load::load(&reload_arg, 64, precision).map_err(|e| e.to_string())
            }),
            draft: None,
        };
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(4);
        let engine = std::thread::spawn(move || worker.run(rx));
        assert_eq!(serve_one(&jobs, &status).expect("first request"), 3);
        device.destroy();
        let err = serve_one(&jobs, &status).expect_err("the request on a lost device fails");
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, Some(DEVICE_LOST));
        assert!(err.message.contains("device was lost"), "{}", err.message);
        assert_eq!(
            serve_one(&jobs, &status).expect("served after the reload"),
            3
        );
        let s = status.lock().expect("status").clone();
        assert_eq!((s.device_losses, s.reload_error), (1, None));
        drop(jobs);
        engine.join().expect("engine thread");
    }
}
