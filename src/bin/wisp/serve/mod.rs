//! `wisp serve`: an OpenAI-compatible HTTP server (axum on tokio) in front of one model.
//!
//! The model lives on one engine thread ([`worker`]); HTTP handlers queue jobs for it in a
//! bounded channel (429 when full) and turn its events into OpenAI responses, streamed as
//! server-sent events or whole. A client that disconnects drops its event receiver, which the
//! engine notices at the next token (or skips the job if it was still queued).

mod api;
mod worker;

use std::future::IntoFuture;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use api::{ApiError, ChatRequest, CompletionRequest, PromptIn, ResponseFormat};
use worker::{Event, Input, Job, SharedStatus, TokenLogprob, Worker};

use crate::cli::ServeArgs;
use crate::load::load_with_draft;
use wisp::model::chat::ChatTemplate;

struct App {
    /// A second tokenizer for `/tokenize` (the engine thread owns the model's).
    tokenizer: wisp::model::tokenizer::Tokenizer,
    jobs: SyncSender<Job>,
    status: SharedStatus,
    model_id: String,
    api_key: Option<String>,
    started: u64,
    next_id: std::sync::atomic::AtomicU64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long requests in flight may run on after a stop signal before they are cut.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(mut args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| format!("--host {} --port {}: {e}", args.host, args.port))?;
    args.model.prefer_chat_model("serve");
    if args.draft.draft.is_some() && args.precision.get() == wisp::ops::matvec::Precision::Fast {
        return Err(
            "--draft verifies drafts at exact precision: it cannot be used with \
                    --precision fast"
                .into(),
        );
    }
    let loaded = load_with_draft(&args.model, args.ctx, args.precision.get(), &args.draft)?;
    let about = describe(&args, &loaded)?;
    let template = ChatTemplate::for_model(&loaded.tokenizer)?;
    let tokenizer = wisp::model::tokenizer::Tokenizer::from_gguf(loaded.file.gguf())?;
    let model_id = args
        .model
        .path()?
        .file_stem()
        .map_or_else(|| "wisp".into(), |s| s.to_string_lossy().into_owned());
    let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(args.queue.max(1));
    let status = SharedStatus::default();
    if let Ok(mut s) = status.lock() {
        s.draft = args.draft.describe();
    }
    let worker = Worker {
        status: status.clone(),
        loaded,
        template,
        ctx: args.ctx,
        shift: args.context_shift,
        grammar: None,
        reload: {
            let (model, ctx, precision) = (args.model.clone(), args.ctx, args.precision.get());
            let draft = args.draft.clone();
            Box::new(move || {
                load_with_draft(&model, ctx, precision, &draft).map_err(|e| e.to_string())
            })
        },
        draft: args.draft.config(),
    };
    std::thread::Builder::new()
        .name("wisp-engine".into())
        .spawn(move || worker.run(rx))?;
    let app = Arc::new(App {
        tokenizer,
        jobs,
        status: status.clone(),
        model_id,
        api_key: args
            .api_key
            .clone()
            .or_else(|| std::env::var("WISP_API_KEY").ok())
            .filter(|k| !k.is_empty()),
        started: unix_now(),
        next_id: Default::default(),
    });
    let auth = if app.api_key.is_some() {
        " (API key required)"
    } else {
        ""
    };
    let router = Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/tokenize", post(tokenize))
        .fallback(not_found)
        .with_state(app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Handlers first, so a signal sent as soon as the start-up line shows is caught.
        let mut signals = StopSignals::new()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().unwrap_or(addr);
        eprintln!("wisp serve: {about}: listening on http://{bound}{auth}");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        let mut server = tokio::spawn(server.into_future());
        tokio::select! {
            r = &mut server => {
                return match r {
                    Ok(Ok(())) => Err("the server stopped by itself".to_string()),
                    Ok(Err(e)) => Err(format!("server: {e}")),
                    Err(e) => Err(format!("server: {e}")),
                };
            }
            () = signals.next() => {}
        }
        // No new connections from here; requests in flight finish, up to DRAIN (a second
        // signal cuts them at once).
        let _ = stop_tx.send(());
        let waiting = in_flight(&status);
        if waiting > 0 {
            eprintln!(
                "wisp serve: stopping: {waiting} request(s) in flight get up to {} s to finish \
                 (a second Ctrl-C cuts them)",
                DRAIN.as_secs()
            );
        }
        let drained = tokio::select! {
            r = tokio::time::timeout(DRAIN, &mut server) => r.is_ok(),
            () = signals.next() => false,
        };
        server.abort();
        let cut = if drained { 0 } else { in_flight(&status) };
        match cut {
            0 => eprintln!("wisp serve: stopped"),
            1 => eprintln!("wisp serve: stopped (1 request in flight was cut)"),
            n => eprintln!("wisp serve: stopped ({n} requests in flight were cut)"),
        }
        Ok::<(), String>(())
    })?;
    // The engine thread may still be generating a cut request: the process ends without it.
    rt.shutdown_background();
    Ok(())
}

/// The start-up line's model, adapter, context and precision: `SmolLM2-135M-Instruct.Q4_1
/// (SmolLM2 135M Instruct) on llvmpipe (…) (Vulkan, T2), context 4096, exact precision`.
fn describe(args: &ServeArgs, loaded: &crate::load::Loaded) -> Result<String, String> {
    let path = args.model.path()?;
    let stem = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let name = loaded
        .file
        .gguf()
        .get_str("general.name")
        .filter(|n| !n.is_empty())
        .map_or_else(String::new, |n| format!(" ({n})"));
    let c = &loaded.gpu.caps;
    let draft = args.draft.describe().map_or_else(String::new, |d| {
        format!(", drafting by {d} (up to {})", args.draft.draft_max)
    });
    Ok(format!(
        "{stem}{name} on {} ({}, {:?}), context {}{}, {} precision{draft}",
        c.adapter.name,
        c.adapter.backend,
        c.tier,
        args.ctx,
        if args.context_shift {
            " with context shift"
        } else {
            ""
        },
        args.precision.get().name()
    ))
}

/// Requests the engine has not finished: the one it runs and those queued behind it.
fn in_flight(status: &SharedStatus) -> usize {
    status.lock().map_or(0, |s| usize::from(s.busy) + s.queued)
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM (what `kill`, systemd and container runtimes send).
#[cfg(unix)]
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    /// Installs the handlers now: until then a signal would end the process at once.
    fn new() -> Result<StopSignals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let handler =
            |kind: SignalKind| signal(kind).map_err(|e| format!("cannot handle stop signals: {e}"));
        Ok(StopSignals {
            int: handler(SignalKind::interrupt())?,
            term: handler(SignalKind::terminate())?,
        })
    }

    /// The next stop signal.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn new() -> Result<StopSignals, String> {
        Ok(StopSignals)
    }

    /// The next Ctrl-C; never, where it cannot be watched.
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message:
            "no such endpoint (have: /v1/chat/completions, /v1/completions, /v1/models, /health, /tokenize)"
                .into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("unknown_url"),
    }
}

/// Liveness and what the engine is doing (requests served and cancelled, the last finish).
async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let engine = app.status.lock().map(|s| json!(*s)).unwrap_or(Value::Null);
    Json(json!({"status": "ok", "engine": engine}))
}

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &app.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if api::constant_time_eq(given.as_bytes(), key.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "incorrect API key provided".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        })
    }
}

/// `{"content": "text"}` → `{"tokens": [ids]}`, as llama.cpp's server has it (no BOS added).
async fn tokenize(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Req {
        content: String,
    }
    let r = authorize(&app, &headers).and_then(|()| api::parse::<Req>(&body));
    match r.and_then(|req| {
        app.tokenizer
            .encode(&req.content, false)
            .map_err(|e| ApiError::invalid(e.to_string(), Some("content")))
    }) {
        Ok(ids) => Json(json!({"tokens": ids})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&app, &headers) {
        return e.into_response();
    }
    Json(json!({"object": "list", "data": [
        {"id": app.model_id, "object": "model", "created": app.started, "owned_by": "wisp"}
    ]}))
    .into_response()
}

/// The schema a `response_format` asks for: `json_object` is any JSON object.
fn schema_of(f: &Option<ResponseFormat>) -> Result<Option<Value>, ApiError> {
    match f {
        None | Some(ResponseFormat::Text) => Ok(None),
        Some(ResponseFormat::JsonObject) => Ok(Some(json!({"type": "object"}))),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            if !json_schema.schema.is_object() {
                return Err(ApiError::invalid(
                    "'json_schema.schema' must be a JSON object",
                    Some("response_format"),
                ));
            }
            Ok(Some(json_schema.schema.clone()))
        }
    }
}

/// Queues `job`; 429 when the queue is full.
fn submit(app: &App, job: Job) -> Result<(), ApiError> {
    // Counted before sending, so the engine never takes a job it has not seen counted.
    if let Ok(mut s) = app.status.lock() {
        s.queued += 1;
    }
    let r = app.jobs.try_send(job);
    if r.is_err() {
        if let Ok(mut s) = app.status.lock() {
            s.queued = s.queued.saturating_sub(1);
        }
    }
    match r {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "the request queue is full; retry later".into(),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded"),
        }),
        Err(TrySendError::Disconnected(_)) => Err(ApiError::server("the engine has stopped")),
    }
}

/// What the endpoint answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// Everything the response needs besides the engine's events.
struct Reply {
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    stream: bool,
    include_usage: bool,
    logprobs: bool,
}

fn lp_json(t: &TokenLogprob) -> Value {
    json!({"token": t.token, "logprob": t.logprob, "bytes": t.bytes})
}

impl Reply {
    fn usage(&self, prompt: usize, cached: usize, completion: usize) -> Value {
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": prompt + completion,
               "prompt_tokens_details": {"cached_tokens": cached}})
    }

    /// The logprobs field of one streamed token or of a whole reply.
    fn logprobs_json(&self, toks: &[(Option<TokenLogprob>, Vec<TokenLogprob>)]) -> Value {
        if !self.logprobs {
            return Value::Null;
        }
        match self.kind {
            Kind::Chat => {
                json!({"content": toks.iter().filter_map(|(lp, top)| lp.as_ref().map(|lp| {
                let mut v = lp_json(lp);
                v["top_logprobs"] = top.iter().map(lp_json).collect();
                v
            })).collect::<Vec<_>>()})
            }
            Kind::Completion => {
                let chosen: Vec<&TokenLogprob> =
                    toks.iter().filter_map(|(lp, _)| lp.as_ref()).collect();
                json!({
                    "tokens": chosen.iter().map(|t| t.token.clone()).collect::<Vec<_>>(),
                    "token_logprobs": chosen.iter().map(|t| t.logprob).collect::<Vec<_>>(),
                    "top_logprobs": toks.iter().map(|(_, top)| top.iter().map(|t| (t.token.clone(), json!(t.logprob))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
                })
            }
        }
    }

    fn chunk(&self, content: &str, finish: Option<&str>, lp: Value, first: bool) -> Value {
        match self.kind {
            Kind::Chat => {
                let mut delta = json!({});
                if first {
                    delta["role"] = json!("assistant");
                }
                if !content.is_empty() || first {
                    delta["content"] = json!(content);
                }
                json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                       "model": self.model, "choices": [{"index": 0, "delta": delta,
                       "logprobs": lp, "finish_reason": finish}]})
            }
            Kind::Completion => {
                json!({"id": self.id, "object": "text_completion", "created": self.created,
                       "model": self.model, "choices": [{"index": 0, "text": content,
                       "logprobs": lp, "finish_reason": finish}]})
            }
        }
    }

    fn whole(&self, text: &str, finish: &str, lp: Value, usage: Value) -> Value {
        match self.kind {
            Kind::Chat => {
                json!({"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": [{"index": 0,
                "message": {"role": "assistant", "content": text}, "logprobs": lp,
                "finish_reason": finish}], "usage": usage})
            }
            Kind::Completion => json!({"id": self.id, "object": "text_completion",
                "created": self.created, "model": self.model, "choices": [{"index": 0,
                "text": text, "logprobs": lp, "finish_reason": finish}], "usage": usage}),
        }
    }
}

/// Waits for the engine to start the job (or refuse it), then answers whole or streamed.
async fn respond(reply: Reply, mut rx: UnboundedReceiver<Event>) -> Response {
    let (prompt, cached) = match rx.recv().await {
        Some(Event::Start {
            prompt_tokens,
            cached_tokens,
        }) => (prompt_tokens, cached_tokens),
        Some(Event::Error(e)) => return e.into_response(),
        _ => return ApiError::server("the engine dropped the request").into_response(),
    };
    if !reply.stream {
        let mut text = String::new();
        let mut toks = Vec::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Token {
                    text: t,
                    logprob,
                    top,
                } => {
                    text.push_str(&t);
                    toks.push((logprob, top));
                }
                Event::Done {
                    tail,
                    finish_reason,
                    completion_tokens,
                    timings,
                } => {
                    text.push_str(&tail);
                    let usage = reply.usage(prompt, cached, completion_tokens);
                    let lp = reply.logprobs_json(&toks);
                    let mut whole = reply.whole(&text, finish_reason, lp, usage);
                    whole["timings"] = timings;
                    return Json(whole).into_response();
                }
                Event::Error(e) => return e.into_response(),
                Event::Start { .. } => {}
            }
        }
        return ApiError::server("the engine dropped the request").into_response();
    }
    // Streamed: a task turns engine events into SSE events; when the client leaves, the SSE
    // receiver is dropped, the task's next send fails and it drops `rx`, which stops the engine.
    let (tx, sse_rx) = tokio::sync::mpsc::channel::<Result<SseEvent, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let send = |v: Value| SseEvent::default().data(v.to_string());
        if reply.kind == Kind::Chat
            && tx
                .send(Ok(send(reply.chunk("", None, Value::Null, true))))
                .await
                .is_err()
        {
            return;
        }
        while let Some(ev) = rx.recv().await {
            let out = match ev {
                Event::Token { text, logprob, top } => {
                    if text.is_empty() && !reply.logprobs {
                        continue;
                    }
                    let lp = reply.logprobs_json(&[(logprob, top)]);
                    vec![send(reply.chunk(&text, None, lp, false))]
                }
                Event::Done {
                    tail,
                    finish_reason,
                    completion_tokens,
                    timings,
                } => {
                    let mut last = reply.chunk(&tail, Some(finish_reason), Value::Null, false);
                    last["timings"] = timings;
                    let mut v = vec![send(last)];
                    if reply.include_usage {
                        let mut u = reply.chunk("", None, Value::Null, false);
                        u["choices"] = json!([]);
                        u["usage"] = reply.usage(prompt, cached, completion_tokens);
                        v.push(send(u));
                    }
                    v.push(SseEvent::default().data("[DONE]"));
                    v
                }
                Event::Error(e) => vec![send(e.body()), SseEvent::default().data("[DONE]")],
                Event::Start { .. } => Vec::new(),
            };
            for e in out {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(sse_rx)).into_response()
}

fn reply_for(app: &App, kind: Kind, c: &api::Common, logprobs: bool) -> Reply {
    let n = app
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Completion => "cmpl",
    };
    Reply {
        kind,
        id: format!("{prefix}-{}-{n}", app.started),
        created: unix_now(),
        model: c.model.clone().unwrap_or_else(|| app.model_id.clone()),
        stream: c.stream,
        include_usage: c.stream_options.as_ref().is_some_and(|o| o.include_usage),
        logprobs,
    }
}

/// Queues a job after the request's common fields are checked, then answers it (whole or
/// streamed); any error before that is answered at once. `input` is the endpoint's own part:
/// what to continue from and how many log-probabilities to report, if any.
async fn serve(
    app: &App,
    kind: Kind,
    common: &api::Common,
    input: Result<(Input, Option<usize>), ApiError>,
) -> Response {
    let queued = (|| {
        let settings = common.settings()?;
        let (input, logprobs) = input?;
        let schema = schema_of(&common.response_format)?;
        let (tx, rx) = unbounded_channel();
        let job = Job {
            input,
            settings,
            logprobs,
            schema,
            events: tx,
        };
        let with_logprobs = job.logprobs.is_some();
        submit(app, job)?;
        Ok::<_, ApiError>((reply_for(app, kind, common, with_logprobs), rx))
    })();
    match queued {
        Ok((reply, rx)) => respond(reply, rx).await,
        Err(e) => e.into_response(),
    }
}

async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match authorize(&app, &headers).and_then(|()| api::parse::<ChatRequest>(&body)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let input = (|| {
        let messages = api::messages(&req.messages)?;
        let top = req.top_logprobs.unwrap_or(0);
        if top > 20 {
            return Err(ApiError::invalid(
                "'top_logprobs' must be at most 20",
                Some("top_logprobs"),
            ));
        }
        if req.top_logprobs.is_some() && !req.logprobs {
            return Err(ApiError::invalid(
                "'top_logprobs' needs 'logprobs': true",
                Some("top_logprobs"),
            ));
        }
        Ok((Input::Chat(messages), req.logprobs.then_some(top as usize)))
    })();
    serve(&app, Kind::Chat, &req.common, input).await
}

async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match authorize(&app, &headers).and_then(|()| api::parse::<CompletionRequest>(&body))
    {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let input = (|| {
        if req.echo {
            return Err(ApiError::invalid("'echo' is not supported", Some("echo")));
        }
        let input = match &req.prompt {
            PromptIn::Text(t) => Input::Text(t.clone()),
            PromptIn::Texts(v) if v.len() == 1 => Input::Text(v[0].clone()),
            PromptIn::Texts(_) => {
                return Err(ApiError::invalid("one prompt per request", Some("prompt")))
            }
            PromptIn::Ids(ids) => Input::Ids(ids.clone()),
        };
        if req.logprobs.is_some_and(|n| n > 5) {
            return Err(ApiError::invalid(
                "'logprobs' must be at most 5",
                Some("logprobs"),
            ));
        }
        Ok((input, req.logprobs.map(|n| n as usize)))
    })();
    serve(&app, Kind::Completion, &req.common, input).await
}
