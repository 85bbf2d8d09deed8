//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run quantized GGUF language models on WebGPU.
///
/// GPU selection: WISP_ADAPTER=<name substring>; WISP_TIER=0|1|2 caps the capability tier;
/// WISP_MAX_BINDING=16M lowers the storage binding limit; WISP_KERNELS=row|workgroup forces a
/// kernel family; WISP_LAYOUT=rows8|gguf forces the weights' row layout; WISP_WEIGHTS=texture|buffer forces where weights live. The default model is
/// Gemma 3 270M Q4_K_M (a base model) in $WISP_CACHE (~/.cache/wisp); chat and serve prefer
/// SmolLM2 135M Instruct there. Both are fetched by scripts/fetch-model.sh; WISP_MODEL overrides
/// the path.
#[derive(Parser)]
#[command(name = "wisp", version)]
pub struct Cli {
    /// More detail on stderr: what the first run measures on a GPU, info-level logs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands `--help` lists first; the rest are developer tools.
const USER_COMMANDS: [&str; 6] = ["run", "chat", "serve", "info", "gpus", "bench"];

/// The argument parser, with `--help` listing user commands first and developer tools after,
/// under their own headings: clap puts every subcommand under one heading, so the root's help
/// template is written here from the subcommands' own descriptions (their `--help` is clap's).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let styles = cmd.get_styles().clone();
    let (header, literal) = (styles.get_header(), styles.get_literal());
    let mut rows: Vec<(String, String)> = cmd
        .get_subcommands()
        .map(|c| {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            (c.get_name().to_string(), about)
        })
        .collect();
    rows.push((
        "help".into(),
        "Print this message or the help of the given command".into(),
    ));
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let section = |title: &str, user: bool| {
        let mut s = format!("{header}{title}:{header:#}\n");
        let is_user = |name: &str| USER_COMMANDS.contains(&name) || name == "help";
        for (name, about) in rows.iter().filter(|(n, _)| is_user(n) == user) {
            let pad = " ".repeat(width - name.len());
            // Braces would be read as template tags.
            let about = about.replace('{', "(").replace('}', ")");
            s.push_str(&format!("  {literal}{name}{literal:#}{pad}  {about}\n"));
        }
        s
    };
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{}\n{}\n\
         {header}Options:{header:#}\n{{options}}{{after-help}}",
        section("Commands", true),
        section("Developer tools", false),
    );
    cmd.help_template(template)
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once from `-v` before any command runs.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `-v` / `--verbose` was given.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate from a prompt (greedy with --temp 0), streaming tokens.
    Run(RunArgs),
    /// Chat interactively with the model's chat template; the KV cache is kept across turns.
    Chat(ChatArgs),
    /// An OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health.
    ///
    /// Without -m or $WISP_MODEL it serves the instruction-tuned SmolLM2 of the cache. Ctrl-C or
    /// SIGTERM stops it: no new requests, those in flight get 10 s to finish (a second signal
    /// cuts them at once), then it exits 0.
    Serve(ServeArgs),
    /// Print a GGUF file's metadata and tensor table.
    Info(InfoArgs),
    /// List the GPU adapters and the capabilities Wisp plans with (tier, f16, subgroups, limits).
    Gpus(GpusArgs),
    /// Prefill and decode speed of a model, decode as % of the adapter's read roofline.
    Bench(ModelBenchArgs),
    /// Dequantize one tensor on the GPU to raw little-endian f32 in GGUF element order.
    Dequant(DequantArgs),
    /// Check every tensor of a model on the GPU: dequantize and matvec against the CPU reference.
    Check(CheckArgs),
    /// Measure the adapter's read roofline and every format's matvec and matmul speed.
    BenchKernels(BenchArgs),
    /// Write the logits after the last prompt token as raw little-endian f32 (n_vocab values).
    Logits(LogitsArgs),
    /// Many chat generations in one process (resets, stopped replies, sampled, JSON output);
    /// fails if memory grew between the warm-up and the end.
    Soak(SoakArgs),
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct SoakArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Generations (chat turns).
    #[arg(short = 'n', long, default_value_t = 500, value_parser = at_least_one)]
    pub n: usize,
    /// Tokens per reply at most.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub max_tokens: usize,
    /// KV cache positions (the conversation shifts when it outgrows them).
    #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u32).range(64..))]
    pub ctx: u32,
    /// Growth of resident or GPU memory, in percent, that fails the soak.
    #[arg(long, default_value_t = 5.0, value_parser = float_in(0.0, 1000.0))]
    pub max_growth: f32,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// KV cache positions: a prompt plus its reply must fit.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: u32,
    /// Require `Authorization: Bearer KEY` (also from $WISP_API_KEY).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Requests waiting behind the running one at most; more get 429.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// A chat that does not fit drops its oldest turns after the system prompt instead of
    /// failing.
    #[arg(long)]
    pub context_shift: bool,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
    #[command(flatten)]
    pub draft: DraftArgs,
}

#[derive(Args, Clone)]
pub struct ModelArg {
    /// GGUF file (default: $WISP_MODEL, else the default model in the cache).
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
}

/// The instruction-tuned model `wisp chat` prefers when no model is given.
pub const CHAT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `$WISP_CACHE` (default `~/.cache/wisp`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("WISP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("wisp")))
        .unwrap_or_else(|| PathBuf::from(".cache/wisp"))
}

/// `name` in the cache, if it is there.
pub fn cached_model(name: &str) -> Option<PathBuf> {
    let p = cache_dir().join(name);
    p.is_file().then_some(p)
}

impl ModelArg {
    /// Chat and serve want an instruction-tuned model, and the default model is a base model:
    /// without `-m` or `$WISP_MODEL`, [`CHAT_MODEL`] in the cache is used if it is there, and
    /// `cmd` says so on stderr.
    pub fn prefer_chat_model(&mut self, cmd: &str) {
        if self.model.is_some() || std::env::var_os("WISP_MODEL").is_some() {
            return;
        }
        if let Some(p) = cached_model(CHAT_MODEL) {
            eprintln!(
                "{cmd}: using {CHAT_MODEL} (instruction-tuned; the default model is a base model). -m picks another."
            );
            self.model = Some(p);
        }
    }

    /// The model path to open, with a hint when the default model is missing.
    pub fn path(&self) -> Result<PathBuf, String> {
        if let Some(p) = &self.model {
            return Ok(p.clone());
        }
        if let Some(p) = std::env::var_os("WISP_MODEL") {
            return Ok(PathBuf::from(p));
        }
        let p = cache_dir().join("gemma-3-270m-q4_k_m.gguf");
        if !p.exists() {
            return Err(format!(
                "the default model is not at {} (fetch it with scripts/fetch-model.sh, or pass -m)",
                p.display()
            ));
        }
        Ok(p)
    }
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DequantArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Name of the tensor, e.g. token_embd.weight.
    pub tensor: String,
    /// Output file (raw little-endian f32).
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Timed repetitions per kernel (the fastest counts).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Weight bytes per matvec benchmark, in MiB.
    #[arg(long, default_value_t = 64)]
    pub mib: u64,
    /// Row length (K) of the benchmark weights.
    #[arg(long, default_value_t = 2048)]
    pub k: u64,
    /// Columns for the matmul benchmark.
    #[arg(long, default_value_t = 64)]
    pub cols: u32,
    /// Also measure the kernel family that was not chosen for this adapter.
    #[arg(long)]
    pub all_families: bool,
    /// Only these formats (comma-separated, e.g. Q4_K,Q8_0).
    #[arg(long, value_delimiter = ',')]
    pub formats: Vec<String>,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Print every tensor's row (also with -v); by default one line per block type.
    #[arg(long)]
    pub tensors: bool,
}

#[derive(Args)]
pub struct GpusArgs {
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A tensor shape as `640×262144`.
pub fn shape(dims: &[u64]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// The prompt of `run` and `logits`: text, or token ids as given (exactly one of them).
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct PromptArgs {
    /// Prompt text (BOS added as the model's metadata says; no chat template).
    #[arg(short = 'p', long)]
    pub prompt: Option<String>,
    /// Prompt as token ids (tokenizer bypassed), e.g. 2,14946,3324.
    #[arg(long, value_parser = token_ids)]
    pub prompt_ids: Option<TokenIds>,
}

/// Decode precision: `exact` (f32 activations, the default) or `fast` (activations quantized
/// to 8 bits per 32 values, integer dot products; within llama.cpp's own distance from exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    #[default]
    Exact,
    Fast,
}

impl PrecisionArg {
    pub fn get(self) -> wisp::ops::matvec::Precision {
        match self {
            PrecisionArg::Exact => wisp::ops::matvec::Precision::Exact,
            PrecisionArg::Fast => wisp::ops::matvec::Precision::Fast,
        }
    }
}

/// `--prompt-ids`, checked while the arguments are parsed (before any model is opened).
#[derive(Clone, Debug)]
pub struct TokenIds(pub Vec<u32>);

fn token_ids(s: &str) -> Result<TokenIds, String> {
    crate::load::parse_ids(s).map(TokenIds)
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n as usize),
        Ok(n) => Err(format!("{n} is not allowed: it must be at least 1")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// A parser for a finite f32 in `lo..=hi`.
fn float_in(lo: f32, hi: f32) -> impl Fn(&str) -> Result<f32, String> + Clone {
    move |s: &str| match s.parse::<f32>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        Ok(v) => Err(format!(
            "{v} is out of range: it must be between {lo} and {hi}"
        )),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// `top_p`: more than 0, at most 1.
fn top_p(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(v) => Err(format!(
            "{v} is out of range: it must be more than 0 and at most 1"
        )),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Sampling options shared by `run` and `chat`.
#[derive(Args)]
pub struct SampleArgs {
    /// Temperature (0 = greedy; at most 10).
    #[arg(long, default_value_t = 0.0, value_parser = float_in(0.0, 10.0))]
    pub temp: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (0 < p <= 1).
    #[arg(long, default_value_t = 0.95, value_parser = top_p)]
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one (0..=1).
    #[arg(long, default_value_t = 0.05, value_parser = float_in(0.0, 1.0))]
    pub min_p: f32,
    /// Penalty on repeated tokens (1 = off; 0.01..=10).
    #[arg(long, default_value_t = 1.0, value_parser = float_in(0.01, 10.0))]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Tokens to generate.
    #[arg(short = 'n', long, default_value_t = 32, value_parser = at_least_one)]
    pub n: usize,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// KV cache positions.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: u32,
    /// One JSON object per token, then a summary line.
    #[arg(long)]
    pub json: bool,
    /// With --json: the K largest raw logits of each step.
    #[arg(long, default_value_t = 0)]
    pub top_logits: usize,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
    #[command(flatten)]
    pub draft: DraftArgs,
}

/// Speculative decoding.
#[derive(Args, Clone, Debug, Default)]
pub struct DraftArgs {
    /// Draft tokens and verify them several per pass over the weights (at exact precision:
    /// greedy decoding gives the same text, sampling the same distribution). `lookup` matches
    /// the last tokens in the prompt and output so far; a GGUF path names a smaller model with
    /// the same vocabulary; `self`, the model itself (every greedy draft stands: the ceiling of
    /// the method, for measuring).
    #[arg(long, value_parser = draft_source, value_name = "lookup|PATH.gguf|self")]
    pub draft: Option<DraftSource>,
    /// Draft tokens per verify pass at most (1 to 15; 2 measured best on lavapipe, where a pass
    /// over 2 tokens costs 1.1–1.4 decode steps and over 5 about 2.5; GPUs should take more).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=15))]
    pub draft_max: u16,
}

/// Where drafts come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DraftSource {
    /// Prompt lookup: what followed the last tokens' most recent earlier occurrence.
    Lookup,
    /// A draft model.
    Model(PathBuf),
    /// The model drafting for itself (every greedy draft stands: the ceiling of the method).
    Itself,
}

fn draft_source(s: &str) -> Result<DraftSource, String> {
    match s {
        "lookup" => return Ok(DraftSource::Lookup),
        "self" => return Ok(DraftSource::Itself),
        _ => {}
    }
    let p = PathBuf::from(s);
    if p.is_file() {
        Ok(DraftSource::Model(p))
    } else {
        Err(format!(
            "'{s}' is neither `lookup`, `self` nor a file (a draft model: a GGUF with the \
             model's vocabulary)"
        ))
    }
}

impl DraftArgs {
    /// The library's drafting settings.
    pub fn config(&self) -> Option<wisp::model::draft::DraftConfig> {
        use wisp::model::draft::{DraftConfig, DraftKind};
        self.draft.as_ref().map(|d| DraftConfig {
            kind: match d {
                DraftSource::Lookup => DraftKind::Lookup,
                DraftSource::Model(_) | DraftSource::Itself => DraftKind::Model,
            },
            max: usize::from(self.draft_max),
        })
    }

    /// What drafts, in words (`lookup` or the draft model's file name).
    pub fn describe(&self) -> Option<String> {
        self.draft.as_ref().map(|d| match d {
            DraftSource::Lookup => "lookup".to_string(),
            DraftSource::Itself => "the model itself".to_string(),
            DraftSource::Model(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        })
    }
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// A system message opening the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens per reply at most.
    #[arg(short = 'n', long, default_value_t = 256, value_parser = at_least_one)]
    pub n: usize,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// KV cache positions (the whole conversation must fit, unless --context-shift).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: u32,
    /// A conversation that outgrows the context drops its oldest turns after the system
    /// prompt and continues.
    #[arg(long)]
    pub context_shift: bool,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
    #[command(flatten)]
    pub draft: DraftArgs,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Output file: n_vocab little-endian f32.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// KV cache positions.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: u32,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct ModelBenchArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Prompt lengths to time prefill at (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [128u32, 512])]
    pub prefill: Vec<u32>,
    /// Tokens to decode.
    #[arg(long, default_value_t = 64)]
    pub decode: usize,
    /// Prompt length for time to first token (decode continues after it).
    #[arg(long, default_value_t = 128)]
    pub ttft_prompt: u32,
    /// Repetitions of the roofline measurement (the fastest counts).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Decode precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Exact)]
    pub precision: PrecisionArg,
    /// Also time speculative decoding on two workloads (text that repeats the prompt, and free
    /// text), side by side with plain decoding.
    #[command(flatten)]
    pub draft: DraftArgs,
}
