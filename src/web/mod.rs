//! The browser engine (wasm32 only): download a GGUF into IndexedDB with HTTP Range requests
//! (resumable, hashed per chunk), stream it from there to WebGPU buffers, and generate. Exposed
//! to JavaScript with wasm-bindgen; `www/wisp-llm/` runs it in a Web Worker behind a typed proxy.
//! Values cross the boundary as JSON strings; errors as `JsError` with the library's message.

pub mod download;
mod js;
pub mod store;

use std::cell::Cell;

use js_sys::Function;
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::gguf::GgufError;
use crate::gpu::{Gpu, GpuError, GpuOptions};
use crate::model::chat::{ChatTemplate, Message};
use crate::model::draft::{DraftConfig, DraftKind, MAX_DRAFT};
use crate::model::forward::Model;
use crate::model::generate::{generate_constrained, GenParams, GenStats, TokenConstraint};
use crate::model::grammar::Grammar;
use crate::model::sampler::SamplerConfig;
use crate::model::session::{fit_messages, reuse_prefix};
use crate::model::tokenizer::Tokenizer;
use crate::model::ModelError;
use crate::ops::matvec::Precision;
use download::{Progress, StoreSource};
use store::{FileMeta, Store, CHUNK_SIZE};

/// Errors of the browser engine.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{context}: {message}")]
    Js { context: String, message: String },
    #[error("this browser offers no {0} here")]
    Unavailable(String),
    #[error("network error fetching {url}: {message}")]
    Network { url: String, message: String },
    #[error("{url} answered HTTP {status}{}", status_meaning(*.status))]
    Http { url: String, status: u16 },
    /// `fetch` itself failed: the browser hides whether the host was unreachable or its answer
    /// was withheld by CORS, so the message names both.
    #[error("could not fetch {url}: the server is unreachable, or it does not let this page read the file (CORS: the host must send Access-Control-Allow-Origin and allow the Range header) ({message})")]
    Fetch { url: String, message: String },
    #[error(
        "the server of {0} does not support HTTP Range requests, which resumable downloads need"
    )]
    NoRange(String),
    #[error("the browser's storage quota is exceeded: free space (delete cached models) or the model streams without caching")]
    Quota,
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("interrupted")]
    Interrupted,
    #[error("bad options: {0}")]
    Options(String),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

impl WebError {
    fn from_js(context: &str, e: JsValue) -> WebError {
        WebError::Js {
            context: context.to_string(),
            message: js::describe(&e),
        }
    }
}

/// A few words on an HTTP error status, for messages the page shows.
fn status_meaning(status: u16) -> &'static str {
    match status {
        401 | 403 => " (access denied)",
        404 | 410 => " (not found)",
        416 => " (range not satisfiable)",
        429 => " (too many requests: try again later)",
        500..=599 => " (server error)",
        _ => "",
    }
}

fn to_js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

thread_local! {
    static INTERRUPT: Cell<bool> = const { Cell::new(false) };
}

/// Asks the running download or generation to stop at its next chunk or token.
#[wasm_bindgen]
pub fn interrupt() {
    INTERRUPT.with(|f| f.set(true));
}

fn interrupted() -> bool {
    INTERRUPT.with(|f| f.get())
}

/// Sampling and length options, as the JS API names them (OpenAI style).
#[derive(Deserialize, Default)]
#[serde(default)]
struct GenOptions {
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    /// OpenAI's `response_format`: `{"type": "json_object"}` or
    /// `{"type": "json_schema", "json_schema": {"schema": …}}` (structured output).
    response_format: Option<serde_json::Value>,
}

impl GenOptions {
    /// The JSON schema `response_format` asks for (`json_object`: any object), if any.
    fn schema(&self) -> Result<Option<serde_json::Value>, WebError> {
        let Some(f) = &self.response_format else {
            return Ok(None);
        };
        match f.get("type").and_then(|t| t.as_str()) {
            None | Some("text") => Ok(None),
            Some("json_object") => Ok(Some(json!({"type": "object"}))),
            Some("json_schema") => match f.pointer("/json_schema/schema") {
                Some(s) if s.is_object() => Ok(Some(s.clone())),
                _ => Err(WebError::Options(
                    "response_format json_schema needs json_schema.schema, a JSON object".into(),
                )),
            },
            Some(t) => Err(WebError::Options(format!(
                "response_format type '{t}': expected text, json_object or json_schema"
            ))),
        }
    }
}

/// `v` when it is finite and within `lo..=hi`, else an error naming the option.
fn in_range(name: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<(), WebError> {
    match v {
        Some(x) if !(x.is_finite() && (lo..=hi).contains(&x)) => Err(WebError::Options(format!(
            "{name} is {x}: it must be between {lo} and {hi}"
        ))),
        _ => Ok(()),
    }
}

impl GenOptions {
    /// Checks every option's range (types were checked while parsing).
    fn check(&self) -> Result<(), WebError> {
        if self.max_tokens == Some(0) {
            return Err(WebError::Options("max_tokens must be at least 1".into()));
        }
        in_range("temperature", self.temperature, 0.0, 2.0)?;
        in_range("min_p", self.min_p, 0.0, 1.0)?;
        in_range("repetition_penalty", self.repetition_penalty, 0.01, 10.0)?;
        match self.top_p {
            Some(p) if !(p > 0.0 && p <= 1.0) => Err(WebError::Options(format!(
                "top_p is {p}: it must be more than 0 and at most 1"
            ))),
            _ => Ok(()),
        }
    }

    fn params(&self) -> GenParams {
        let d = SamplerConfig::default();
        GenParams {
            max_tokens: self.max_tokens.unwrap_or(128),
            sampler: SamplerConfig {
                temperature: self.temperature.unwrap_or(d.temperature),
                top_k: self.top_k.unwrap_or(d.top_k),
                top_p: self.top_p.unwrap_or(d.top_p),
                min_p: self.min_p.unwrap_or(d.min_p),
                repeat_penalty: self.repetition_penalty.unwrap_or(d.repeat_penalty),
                seed: self.seed.unwrap_or(d.seed),
                ..d
            },
            stop: self.stop.clone().unwrap_or_default(),
            top_logits: 0,
            logprobs: None,
            draft: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadOptions {
    /// KV cache positions (default 2048).
    context: Option<u32>,
    /// Decode precision: "exact" (default) or "fast".
    precision: Option<String>,
    /// A chat that outgrows the context drops its oldest turns after the system prompt.
    #[serde(rename = "contextShift")]
    context_shift: bool,
    /// Where the weights live: "buffer" or "texture" for every block type; by default each
    /// type's is measured with the kernel family (`WISP_WEIGHTS` natively).
    weights: Option<String>,
    /// Speculative decoding: "lookup" (prompt lookup) drafts tokens that one pass over the
    /// weights verifies; exact precision only.
    draft: Option<String>,
    /// Draft tokens per verify pass at most (1 to 15, default 2).
    #[serde(rename = "draftMax")]
    draft_max: Option<usize>,
}

/// Generation parameters from the JS options (OpenAI names: `max_tokens`, `temperature`,
/// `top_p`, `top_k`, `min_p`, `repetition_penalty`, `seed`, `stop`); "" means defaults.
pub fn gen_params(options: &str) -> Result<GenParams, WebError> {
    if options.trim().is_empty() {
        return Ok(GenOptions::default().params());
    }
    let o = serde_json::from_str::<GenOptions>(options)
        .map_err(|e| WebError::Options(e.to_string()))?;
    o.check()?;
    Ok(o.params())
}

/// Picks the kernel family by measuring ([`crate::bench::FamilyProbe`]), as the CLI does, and keeps
/// the choice per adapter, model shape and precision in IndexedDB's `settings`: the first load on
/// an adapter times both families, later loads read the choice. Without a store it measures every
/// time; a failed measurement keeps the device-type default. Returns what `info().adapter.kernels`
/// reports: `{source: "measured" | "cached" | "default", step_matvec_ms?, prefill_matmul_ms?}`.
async fn choose_family(
    gpu: &mut Gpu,
    store: Option<&Store>,
    gguf: &crate::gguf::Gguf,
    precision: Precision,
    notice: &dyn Fn(String),
    measuring: &dyn Fn(),
) -> serde_json::Value {
    use crate::bench::{FamilyChoice, FamilyProbe};
    let Some(probe) = FamilyProbe::new(gpu, gguf, precision) else {
        return json!({"source": "default"});
    };
    // The browser's WebGPU adapter reports no driver version; its user agent names the browser
    // build (and with it Dawn and SwiftShader), so an update measures again.
    let agent = js::global_get("navigator")
        .and_then(|n| {
            js_sys::Reflect::get(&n, &JsValue::from_str("userAgent"))
                .map_err(|e| WebError::from_js("reading navigator.userAgent", e))
        })
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    let key = format!("kernel-family | {} | {agent}", probe.key);
    if let Some(s) = store {
        let cached = s.setting(&key).await.ok().flatten();
        if let Some(v) = cached.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
            if FamilyChoice::apply_cached(&v, gpu) {
                return json!({
                    "source": "cached",
                    "step_matvec_ms": v.get("step_matvec_ms"),
                    "weights_ms": v.get("weights_ms"),
                    "prefill_matmul_ms": v.get("prefill_matmul_ms"),
                });
            }
        }
    }
    // Only now is it known that this load pays for the timing: the page says so (a few
    // seconds on a slow adapter, once per adapter and model shape).
    measuring();
    match probe.measure(gpu).await {
        Ok(choice) => {
            choice.apply(gpu);
            let v = choice.to_json();
            if let Some(s) = store {
                if let Err(e) = s.put_setting(&key, &v.to_string()).await {
                    notice(format!("the kernel family could not be kept ({e})"));
                }
            }
            log::info!("kernel families: {}", choice.report());
            json!({
                "source": "measured",
                "step_matvec_ms": v.get("step_matvec_ms"),
                "weights_ms": v.get("weights_ms"),
                "prefill_matmul_ms": v.get("prefill_matmul_ms"),
            })
        }
        Err(e) => {
            notice(format!(
                "timing the kernel families failed ({e}); keeping {}",
                gpu.caps.family.name()
            ));
            json!({"source": "default"})
        }
    }
}

/// What the page calls the model: GGUF's `general.name`, else the file name in `url`.
fn display_name(gguf: &crate::gguf::Gguf, url: &str) -> String {
    match gguf.get_str("general.name").map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            let path = url.split(['?', '#']).next().unwrap_or(url);
            path.rsplit('/').next().unwrap_or(path).to_string()
        }
    }
}

fn report(cb: &Function, p: &Progress) {
    if let Ok(s) = serde_json::to_string(p) {
        let _ = cb.call1(&JsValue::NULL, &JsValue::from_str(&s));
    }
}

/// A model loaded on the GPU.
#[wasm_bindgen]
pub struct Engine {
    gpu: Gpu,
    model: Model,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    info: serde_json::Value,
    context_shift: bool,
    /// Structured output's view of the vocabulary, built at the first request that needs it.
    grammar: Option<Grammar>,
    /// Speculative decoding (`load(url, { draft: "lookup" })`).
    draft: Option<DraftConfig>,
}

/// The result of a generation as the JS API returns it: `{text, token_ids, finish_reason,
/// usage, timings}` (end-of-generation tokens are not in `token_ids`).
pub fn stats_json(s: &GenStats, tok: &Tokenizer, cached: usize) -> String {
    let prompt = s.prompt_tokens + cached;
    json!({
        "text": s.text,
        "token_ids": s.generated.iter().filter(|&&t| !tok.is_eog(t)).collect::<Vec<_>>(),
        "finish_reason": s.finish.reason(),
        "usage": {"prompt_tokens": prompt, "completion_tokens": s.generated.len(),
                  "total_tokens": prompt + s.generated.len(),
                  "prompt_tokens_details": {"cached_tokens": cached}},
        "timings": {"ttft_ms": s.ttft_s * 1e3, "prefill_tok_s": s.prefill_tok_s(),
                    "decode_tok_s": s.decode_tok_s(), "drafted": s.drafted,
                    "accepted": s.accepted, "tokens_per_pass": s.tokens_per_pass()},
    })
    .to_string()
}

#[wasm_bindgen]
impl Engine {
    /// Downloads `url` into IndexedDB (resuming a partial download), verifies it, and uploads
    /// it to the GPU. `on_progress` gets JSON progress events.
    pub async fn load(
        url: String,
        options: String,
        on_progress: Function,
    ) -> Result<Engine, JsError> {
        INTERRUPT.with(|f| f.set(false));
        let opts: LoadOptions = if options.is_empty() {
            LoadOptions::default()
        } else {
            serde_json::from_str(&options).map_err(to_js)?
        };
        let notice = |m: String| {
            log::warn!("{m}");
            report(
                &on_progress,
                &Progress {
                    phase: "notice",
                    done: 0,
                    total: 0,
                    rate: 0.0,
                    resumed_from_chunk: 0,
                    message: m,
                },
            );
        };
        let mut store = match Store::open().await {
            Ok(s) => Some(s),
            Err(e) => {
                notice(format!(
                    "IndexedDB is unavailable ({e}): streaming the model without caching"
                ));
                None
            }
        };
        let mut meta = None;
        if let Some(s) = &store {
            match download::download(s, &url, &mut |p| report(&on_progress, p), &interrupted).await
            {
                Ok(m) => meta = Some(m),
                Err(WebError::Quota) => notice(WebError::Quota.to_string()),
                Err(e) => return Err(to_js(e)),
            }
        }
        let meta = match meta {
            Some(m) => m,
            None => {
                store = None;
                FileMeta::new(
                    &url,
                    download::remote_size(&url).await.map_err(to_js)?,
                    CHUNK_SIZE,
                )
            }
        };
        download::REFETCHED.with(|r| r.borrow_mut().clear());
        let gguf = download::header(store.as_ref(), &meta)
            .await
            .map_err(to_js)?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(to_js)?;
        let template = ChatTemplate::for_model(&tokenizer).map_err(to_js)?;
        let ctx = opts.context.unwrap_or(2048);
        if ctx == 0 {
            return Err(to_js(WebError::Options(
                "'context' must be at least 1 (KV cache positions)".into(),
            )));
        }
        let precision = match opts.precision.as_deref() {
            None => Precision::Exact,
            Some(p) => Precision::parse(p).ok_or_else(|| {
                to_js(WebError::Options(format!(
                    "precision '{p}': expected \"exact\" or \"fast\""
                )))
            })?,
        };
        let draft = match opts.draft.as_deref() {
            None => None,
            Some("lookup") => Some(DraftConfig {
                kind: DraftKind::Lookup,
                max: opts.draft_max.unwrap_or(2),
            }),
            Some(other) => {
                return Err(to_js(WebError::Options(format!(
                    "draft '{other}': expected \"lookup\" (a draft model runs natively: \
                     `wisp run --draft PATH.gguf`)"
                ))))
            }
        };
        if let Some(d) = &draft {
            if !(1..=MAX_DRAFT).contains(&d.max) {
                return Err(to_js(WebError::Options(format!(
                    "draftMax is {}: it must be between 1 and {MAX_DRAFT}",
                    d.max
                ))));
            }
            if precision == Precision::Fast {
                return Err(to_js(WebError::Options(
                    "draft: drafts are verified at exact precision; it cannot be used with \
                     precision \"fast\""
                        .into(),
                )));
            }
        }
        let weight_textures = match opts.weights.as_deref() {
            None => None,
            Some(w) => match crate::gpu::weight_store(w) {
                Some(t) => Some(t),
                None => {
                    return Err(to_js(WebError::Options(format!(
                        "weights '{w}': expected \"buffer\" or \"texture\""
                    ))))
                }
            },
        };
        let mut gpu = Gpu::new(&GpuOptions {
            weight_textures,
            ..GpuOptions::default()
        })
        .await
        .map_err(to_js)?;
        // Without a store the timing cannot be kept, and the page should not promise it.
        let measure_message = if store.is_some() {
            "measuring this GPU once (a few seconds); kept for next time"
        } else {
            "measuring this GPU (a few seconds; not kept: no storage)"
        };
        let measuring = || {
            report(
                &on_progress,
                &Progress {
                    phase: "measure",
                    done: 0,
                    total: 0,
                    rate: 0.0,
                    resumed_from_chunk: 0,
                    message: measure_message.into(),
                },
            )
        };
        let name = display_name(&gguf, &url);
        let kernels = choose_family(
            &mut gpu,
            store.as_ref(),
            &gguf,
            precision,
            &notice,
            &measuring,
        )
        .await;
        let src = StoreSource::new(store.as_ref(), meta.clone(), gguf);
        let t0 = js::now_ms();
        let cb = on_progress.clone();
        let mut model = Model::load(&gpu, &src, ctx, &mut |done, total| {
            let secs = ((js::now_ms() - t0) / 1e3).max(1e-3);
            report(
                &cb,
                &Progress {
                    phase: "load",
                    done,
                    total,
                    rate: done as f64 / secs,
                    resumed_from_chunk: 0,
                    message: String::new(),
                },
            );
        })
        .await
        .map_err(to_js)?;
        model.set_precision(&gpu, precision).await.map_err(to_js)?;
        let refetched = download::REFETCHED.with(|r| r.borrow().clone());
        let c = &gpu.caps;
        let info = json!({
            "url": url, "size": meta.size, "cached": store.is_some(),
            "refetched_chunks": refetched,
            "adapter": {"name": c.adapter.name, "backend": c.adapter.backend, "tier": format!("{:?}", c.tier),
                        "shader_f16": c.shader_f16, "family": c.family.name(),
                        "prefill_family": c.prefill_family.name(),
                        "weights_in_textures": c.texture_types().iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                        "kernels": kernels},
            "model": {"name": name, "arch": format!("{:?}", model.cfg.arch), "n_layer": model.cfg.n_layer,
                      "n_vocab": model.cfg.n_vocab, "context": ctx,
                      "precision": precision.name(),
                      "draft": draft.as_ref().map(|d| json!({"kind": "lookup", "max": d.max}))},
            "template": format!("{:?}", template.source()),
        });
        Ok(Engine {
            gpu,
            model,
            tokenizer,
            template,
            info,
            context_shift: opts.context_shift,
            grammar: None,
            draft,
        })
    }

    /// What was loaded, on which adapter (JSON).
    pub fn info(&self) -> String {
        self.info.to_string()
    }

    /// What the engine has allocated on the GPU since it was created (JSON `{"buffers",
    /// "buffer_bytes", "bind_groups", "pipelines"}`): every allocation goes through it, so a
    /// figure that stops growing after warm-up means GPU memory is flat.
    pub fn gpu_allocations(&self) -> String {
        let c = self.gpu.counts();
        json!({"buffers": c.buffers, "buffer_bytes": c.buffer_bytes,
               "bind_groups": c.bind_groups, "pipelines": c.pipelines})
        .to_string()
    }

    /// Generates after raw `prompt` text (BOS as the model says, no template), from an empty
    /// context. `on_token(json)` gets `{"id", "text"}` per token and returns false to stop.
    pub async fn generate(
        &mut self,
        prompt: String,
        options: String,
        on_token: Function,
    ) -> Result<String, JsError> {
        let ids = self.tokenizer.encode(&prompt, true).map_err(to_js)?;
        self.model.reset();
        self.run(ids, 0, &options, &on_token).await
    }

    /// Like [`generate`](Self::generate) with token ids as given.
    pub async fn generate_ids(
        &mut self,
        ids: Vec<u32>,
        options: String,
        on_token: Function,
    ) -> Result<String, JsError> {
        self.model.reset();
        self.run(ids, 0, &options, &on_token).await
    }

    /// One chat turn: `messages` (JSON `[{"role", "content"}]`) rendered with the model's chat
    /// template; the KV cache of the longest common prefix with the previous turn is reused.
    pub async fn chat(
        &mut self,
        messages: String,
        options: String,
        on_token: Function,
    ) -> Result<String, JsError> {
        #[derive(Deserialize)]
        struct M {
            role: String,
            content: String,
        }
        let msgs: Vec<M> = serde_json::from_str(&messages).map_err(to_js)?;
        let msgs: Vec<Message> = msgs
            .iter()
            .map(|m| Message::new(&m.role, &m.content))
            .collect();
        let ctx = self.model.cache.shape().ctx;
        let max_tokens = gen_params(&options).map_err(to_js)?.max_tokens as u32;
        let reserve = if self.context_shift {
            max_tokens.min(ctx / 2).max(1)
        } else {
            1
        };
        let ids = fit_messages(
            &self.template,
            &self.tokenizer,
            &msgs,
            ctx,
            reserve,
            self.context_shift,
            self.model.tokens(),
        )
        .map_err(to_js)?
        .ids;
        if ids.is_empty() {
            return Err(JsError::new("the conversation renders to no tokens"));
        }
        // The KV cache of the longest prefix shared with the previous request is reused.
        let keep = reuse_prefix(&mut self.model, &ids);
        self.run(ids[keep..].to_vec(), keep, &options, &on_token)
            .await
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.model.reset();
    }

    /// Generates after `ids`, which follow `cached` tokens already in the KV cache.
    async fn run(
        &mut self,
        ids: Vec<u32>,
        cached: usize,
        options: &str,
        on_token: &Function,
    ) -> Result<String, JsError> {
        INTERRUPT.with(|f| f.set(false));
        if ids.is_empty() && cached == 0 {
            return Err(to_js(WebError::Options("the prompt is empty".into())));
        }
        let mut params = gen_params(options).map_err(to_js)?;
        params.draft = self.draft.clone();
        let schema = if options.trim().is_empty() {
            None
        } else {
            serde_json::from_str::<GenOptions>(options)
                .map_err(|e| to_js(WebError::Options(e.to_string())))?
                .schema()
                .map_err(to_js)?
        };
        let mut constraint = match schema {
            Some(s) => {
                if self.grammar.is_none() {
                    let n_vocab = self.model.cfg.n_vocab as usize;
                    self.grammar = Some(Grammar::new(&self.tokenizer, n_vocab).map_err(to_js)?);
                }
                match &self.grammar {
                    Some(g) => Some(g.json_schema(&s).map_err(to_js)?),
                    None => None,
                }
            }
            None => None,
        };
        let stats = generate_constrained(
            &mut self.model,
            &self.gpu,
            &self.tokenizer,
            &ids,
            &params,
            constraint.as_mut().map(|c| c as &mut dyn TokenConstraint),
            &mut |t| {
                let line = json!({"id": t.id, "text": t.text}).to_string();
                let go = on_token
                    .call1(&JsValue::NULL, &JsValue::from_str(&line))
                    .map(|v| v.as_bool() != Some(false))
                    .unwrap_or(false);
                go && !interrupted()
            },
        )
        .await
        .map_err(to_js)?;
        Ok(stats_json(&stats, &self.tokenizer, cached))
    }
}

/// Cached models (JSON `[{"url", "size", "stored_bytes", "complete", "chunks"}]`).
#[wasm_bindgen]
pub async fn list_models() -> Result<String, JsError> {
    let store = Store::open().await.map_err(to_js)?;
    let list: Vec<serde_json::Value> = store
        .list()
        .await
        .map_err(to_js)?
        .iter()
        .map(|m| {
            json!({"url": m.url, "size": m.size, "stored_bytes": m.stored_bytes(),
                   "complete": m.complete(), "chunks": m.hashes.len(), "hashes": m.hashes})
        })
        .collect();
    Ok(serde_json::Value::Array(list).to_string())
}

/// Deletes a cached model.
#[wasm_bindgen]
pub async fn delete_model(url: String) -> Result<(), JsError> {
    let store = Store::open().await.map_err(to_js)?;
    store.delete(&url).await.map_err(to_js)
}

/// Downloads (or resumes) a model into the cache without loading it.
#[wasm_bindgen]
pub async fn download_model(url: String, on_progress: Function) -> Result<String, JsError> {
    INTERRUPT.with(|f| f.set(false));
    let store = Store::open().await.map_err(to_js)?;
    let m = download::download(&store, &url, &mut |p| report(&on_progress, p), &interrupted)
        .await
        .map_err(to_js)?;
    Ok(json!({"url": m.url, "size": m.size, "complete": m.complete()}).to_string())
}

/// Damages one stored chunk (flips its first byte) so tests can check that a load detects and
/// re-fetches it.
#[wasm_bindgen]
pub async fn corrupt_chunk_for_test(url: String, index: usize) -> Result<(), JsError> {
    let store = Store::open().await.map_err(to_js)?;
    let meta = store
        .meta(&url)
        .await
        .map_err(to_js)?
        .ok_or_else(|| JsError::new("not cached"))?;
    let c = store
        .chunk(&url, index)
        .await
        .map_err(to_js)?
        .ok_or_else(|| JsError::new("chunk not stored"))?;
    let copy = js_sys::Uint8Array::new_with_length(c.length());
    copy.set(&c, 0);
    copy.set_index(0, copy.get_index(0) ^ 0xff);
    // Keep the recorded hash: only the bytes change.
    store.put_chunk(&meta, index, &copy).await.map_err(to_js)
}

/// "Will it run?": reads the GGUF header of `url` with Range requests (no download) and
/// compares what the model needs with this adapter's limits and features. JSON
/// `{"ok", "reasons": [..], "needs": {..}, "adapter": {..}}`.
#[wasm_bindgen]
pub async fn will_it_run(url: String, options: String) -> Result<String, JsError> {
    let opts: LoadOptions = if options.is_empty() {
        LoadOptions::default()
    } else {
        serde_json::from_str(&options).map_err(to_js)?
    };
    let size = download::remote_size(&url).await.map_err(to_js)?;
    let mut parser = crate::gguf::StreamParser::new().with_file_len(size);
    let mut pos = 0u64;
    let gguf = loop {
        let end = (pos + (1 << 20)).min(size);
        if end <= pos {
            parser.finish().map_err(to_js)?;
            return Err(JsError::new("the file ends inside its GGUF header"));
        }
        let bytes = download::fetch_bytes(&url, pos, end).await.map_err(to_js)?;
        if let Some(g) = parser.feed(&bytes.to_vec()).map_err(to_js)? {
            break g;
        }
        pos = end;
    };
    let gpu = Gpu::new(&GpuOptions::default()).await.map_err(to_js)?;
    let caps = &gpu.caps;
    let mut reasons = Vec::new();
    // The load-time audit: every key and tensor used, harmless or refused by name.
    let cfg = match crate::model::config::Config::from_gguf(&gguf) {
        Ok(c) => Some(c),
        Err(crate::model::config::ConfigError::Refused(list)) => {
            reasons.extend(list.iter().map(|r| r.to_string()));
            None
        }
        Err(e) => {
            reasons.push(e.to_string());
            None
        }
    };
    let mut weights = 0u64;
    let mut largest = (String::new(), 0u64);
    let mut widest_row = 0u64;
    for t in &gguf.tensors {
        weights += t.n_bytes;
        if t.n_bytes > largest.1 {
            largest = (t.name.clone(), t.n_bytes);
        }
        // Unsupported block types are among the audit's refusals.
        if let Some(rb) = crate::quant::row_bytes(t.ty, t.row_len()) {
            widest_row = widest_row.max(rb);
        }
    }
    if widest_row > caps.max_binding {
        reasons.push(format!(
            "a row of {widest_row} bytes exceeds the adapter's storage binding limit of {} bytes",
            caps.max_binding
        ));
    }
    let ctx = opts.context.unwrap_or(2048);
    let mut kv = 0u64;
    if let Some(c) = &cfg {
        let elem = if caps.tier >= crate::gpu::Tier::T1 {
            2
        } else {
            4
        };
        kv = 2
            * u64::from(c.n_layer)
            * u64::from(c.n_head_kv)
            * u64::from(c.head_dim)
            * u64::from(ctx)
            * elem;
        let layer = kv / 2 / u64::from(c.n_layer.max(1));
        if layer > caps.max_binding.min(caps.max_buffer_size) {
            reasons.push(format!(
                "one layer's KV cache at context {ctx} ({layer} bytes) exceeds the binding limit: use a smaller context"
            ));
        }
        if crate::ops::attention::Tiles::for_head_dim(c.head_dim).is_none() {
            reasons.push(format!("head dimension {} is not supported", c.head_dim));
        }
    }
    Ok(json!({
        "ok": reasons.is_empty(),
        "reasons": reasons,
        "needs": {"file_bytes": size, "weight_bytes": weights, "kv_cache_bytes": kv, "context": ctx,
                  "gpu_bytes_estimate": weights + kv,
                  "largest_tensor": {"name": largest.0, "bytes": largest.1}, "widest_row_bytes": widest_row,
                  "architecture": gguf.architecture(), "shader_f16_required": false},
        "adapter": {"name": caps.adapter.name, "tier": format!("{:?}", caps.tier), "shader_f16": caps.shader_f16,
                    "max_storage_binding": caps.max_binding, "max_buffer_size": caps.max_buffer_size},
    })
    .to_string())
}
