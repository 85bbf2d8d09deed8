//! Golden test: the default model (and SmolLM2 when fetched) against llama.cpp's greedy run and
//! an exact float64 forward pass (`tests/data/oracle/*.json`), on every adapter.
//!
//! Each step is teacher-forced on llama.cpp's ids. Wisp's greedy token must equal llama.cpp's,
//! or, where they part, the exact (float64) forward's: Wisp computes in f32 and must side with
//! exact math, not with llama.cpp's 8-bit activations. The logits of the exact pass's top-5 ids
//! must be within 0.1% of the top logit of the exact values (see `LOGIT_TOL`).

mod common;

use wisp::gguf::GgufFile;
use wisp::model::forward::{Model, Output, Want};
use wisp::ops::matvec::Precision;

/// `fast` precision (8-bit activations, as llama.cpp's): within llama.cpp's own distance from
/// exact math, 3% of |top logit|, and the greedy token of llama.cpp or of exact math except at
/// a near-tie (the exact logits of Wisp's pick and of the exact top within `FAST_TIE`).
const FAST_LOGIT_TOL: f64 = 0.03;
const FAST_TIE: f64 = 0.25;

/// |wisp − exact| ≤ LOGIT_TOL · |exact top logit| for the exact pass's top-5 ids: 0.1%.
/// llama.cpp itself sits 1–3% away (8-bit activations). Wisp computes in f32 with f16 K/V at
/// T1+, and measured at most 0.042% (SmolLM2 on lavapipe, f16 cache; Gemma 3: 0.012%) and
/// 0.0001% (SwiftShader, f32 cache) over 32 steps; 0.1% leaves a 2.4× margin for other adapters'
/// exp/sqrt accuracy while staying 10× inside the 1% and far from llama.cpp's distance.
const LOGIT_TOL: f64 = 0.001;

struct Case {
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    exact_top: Vec<Vec<(u32, f64)>>,
}

fn load_case(name: &str) -> Case {
    let path = format!("{}/tests/data/oracle/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("oracle json");
    let ids = |x: &serde_json::Value| -> Vec<u32> {
        x.as_array()
            .expect("array")
            .iter()
            .map(|i| i.as_u64().expect("id") as u32)
            .collect()
    };
    let exact_top = v["exact_ref"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            s["top"]
                .as_array()
                .expect("top")
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().expect("id") as u32,
                        p[1].as_f64().expect("logit"),
                    )
                })
                .collect()
        })
        .collect();
    Case {
        prompt_ids: ids(&v["prompt_ids"]),
        greedy_ids: ids(&v["greedy_ids"]),
        exact_top,
    }
}

fn model_path(var: &str, file: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(p.into());
    }
    let cache = std::env::var_os("WISP_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/wisp"))
        })?;
    let p = cache.join(file);
    p.exists().then_some(p)
}

/// Runs one oracle case on every adapter; returns failures.
fn run_case(
    model_file: &std::path::Path,
    case: &Case,
    steps: usize,
    precision: Precision,
) -> Vec<String> {
    let file = GgufFile::open(model_file).expect("model opens");
    let mut failures = Vec::new();
    let tol = match precision {
        Precision::Exact => LOGIT_TOL,
        Precision::Fast => FAST_LOGIT_TOL,
    };
    for gpu in common::devices() {
        let name = format!("{} {}", gpu.caps.adapter.name, precision.name());
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 512, &mut |_, _| {})).expect("model loads");
        pollster::block_on(model.set_precision(&gpu, precision)).expect("precision");
        let mut ties = Vec::new();
        let t0 = std::time::Instant::now();
        common::progress(&format!(
            "{}: {name}, {steps} teacher-forced steps",
            model_file
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        ));
        let mut input = case.prompt_ids.clone();
        let mut worst = 0f64;
        let mut partings = Vec::new();
        for step in 0..steps.min(case.greedy_ids.len()) {
            let logits = match pollster::block_on(model.forward(&gpu, &input, Want::Logits)) {
                Ok(Output::Logits(l)) => l,
                other => {
                    failures.push(format!("[{name}] step {step}: {other:?}"));
                    break;
                }
            };
            let ours = wisp::model::sampler::argmax(&logits);
            let llama = case.greedy_ids[step];
            let exact = &case.exact_top[step];
            if ours != llama {
                let near_tie = precision == Precision::Fast
                    && exact
                        .iter()
                        .any(|&(id, l)| id == ours && exact[0].1 - l < FAST_TIE);
                if ours == exact[0].0 {
                    partings.push(step);
                } else if near_tie {
                    ties.push(step);
                } else {
                    failures.push(format!("[{name}] step {step}: Wisp picked {ours}, llama.cpp {llama}, exact math {}", exact[0].0));
                }
            }
            let top = exact[0].1.abs();
            for &(id, want) in exact {
                let got = f64::from(logits[id as usize]);
                let err = (got - want).abs() / top;
                worst = worst.max(err);
                if err > tol {
                    failures.push(format!("[{name}] step {step}: logit of {id} is {got}, exact {want} ({:.3}% of the top logit)", err * 100.0));
                }
            }
            input = vec![llama];
            if (step + 1) % 8 == 0 {
                common::progress(&format!(
                    "  [{name}] step {} of {steps}, {:.0} s",
                    step + 1,
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
        eprintln!(
            "[{name}] {steps} steps: worst logit error {:.4}% of the top logit; parted from llama.cpp (siding with exact math) at steps {partings:?}; near-ties at {ties:?}",
            worst * 100.0
        );
    }
    failures
}

/// Dispatches of a warm greedy decode step after `pos` cached tokens, checking that it creates
/// no GPU object.
fn decode_step_dispatches(gpu: &wisp::gpu::Gpu, model: &mut Model, pos: u32) -> u64 {
    model.reset();
    let prompt: Vec<u32> = (0..pos).map(|i| 100 + i).collect();
    pollster::block_on(model.forward(gpu, &prompt, Want::Argmax)).expect("prompt");
    let before = gpu.counts();
    pollster::block_on(model.forward(gpu, &[42], Want::Argmax)).expect("step");
    let d = gpu.counts().since(&before);
    assert_eq!(d.objects(), 0, "a decode step created GPU objects: {d:?}");
    d.dispatches
}

/// A real model's decode step runs 8 dispatches per layer while one attention split covers the
/// keys (q/k/v; QK-norm, RoPE and the KV store; attention; the output projection; residual and
/// norm; gate and up with the GLU; down; residual and norm), and `outside` for the embedding and
/// the head, plus one per further binding-sized chunk of a tied embedding (its lookup and the
/// head's matvec run per chunk); 9 per layer at `fast` (the GLU output's quantization; the
/// attention output is quantized by attention). (Past one split, attention adds its split
/// pass: `tests/attention.rs` covers both paths' values.)
fn assert_decode_dispatches(gpu: &wisp::gpu::Gpu, model: &mut Model, outside: u64) {
    let layers = u64::from(model.cfg.n_layer);
    let w = &model.weights;
    let outside = match &w.output {
        Some(out) => outside + (w.token_embd.chunks.len() + out.chunks.len() - 2) as u64,
        None => outside + 2 * (w.token_embd.chunks.len() - 1) as u64,
    };
    let name = &gpu.caps.adapter.name;
    let short = decode_step_dispatches(gpu, model, 8);
    assert_eq!(
        short,
        8 * layers + outside,
        "[{name}] decode after 8 tokens"
    );
    // `fast`: one more per layer for the input that neither a residual step nor attention
    // quantizes (the GLU output), and one for the first layer's input.
    pollster::block_on(model.set_precision(gpu, Precision::Fast)).expect("fast");
    let fast = decode_step_dispatches(gpu, model, 8);
    pollster::block_on(model.set_precision(gpu, Precision::Exact)).expect("exact");
    assert_eq!(
        fast,
        9 * layers + outside + 1,
        "[{name}] fast decode after 8 tokens"
    );
    eprintln!(
        "[{name}] decode: {short} dispatches ({} per layer, {outside} outside); fast {fast}",
        (short - outside) / layers
    );
}

/// Runs the oracle case `json` with the model from `$var`, or `file` in the cache.
fn oracle_test(var: &str, file: &str, json: &str, fetch: &str) {
    oracle_test_at(var, file, json, fetch, Precision::Exact, 32);
}

fn oracle_test_at(
    var: &str,
    file: &str,
    json: &str,
    fetch: &str,
    precision: Precision,
    default_steps: usize,
) {
    let Some(path) = model_path(var, file) else {
        panic!("{file} is missing: run {fetch}");
    };
    let case = load_case(json);
    let steps: usize = std::env::var("WISP_ORACLE_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_steps);
    let f = run_case(&path, &case, steps, precision);
    assert!(f.is_empty(), "{}", f.join("\n"));
}

#[test]
fn gemma3_matches_llama_cpp_and_exact_math() {
    oracle_test(
        "WISP_MODEL",
        "gemma-3-270m-q4_k_m.gguf",
        "gemma3-270m-q4_k_m.once_upon_a_time.json",
        "scripts/fetch-model.sh",
    );
}

#[test]
fn smollm2_matches_llama_cpp_and_exact_math() {
    oracle_test(
        "WISP_SMOLLM2_MODEL",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m-instruct-q4_1.once_upon_a_time.json",
        "scripts/fetch-model.sh smollm2",
    );
}

/// `fast` precision on both oracle prompts (8 decode steps each, to keep CI's time):
/// within 3% of the top logit of exact math and the same greedy tokens except near-ties.
#[test]
fn fast_precision_stays_within_llama_cpp_distance() {
    oracle_test_at(
        "WISP_MODEL",
        "gemma-3-270m-q4_k_m.gguf",
        "gemma3-270m-q4_k_m.once_upon_a_time.json",
        "scripts/fetch-model.sh",
        Precision::Fast,
        8,
    );
    oracle_test_at(
        "WISP_SMOLLM2_MODEL",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m-instruct-q4_1.once_upon_a_time.json",
        "scripts/fetch-model.sh smollm2",
        Precision::Fast,
        8,
    );
}

/// `generate` (GPU argmax, streaming decoder, no teacher forcing) reproduces llama.cpp's first
/// 16 greedy tokens of the default model (Wisp and llama.cpp part only at step 30); its decode steps run 8 dispatches per layer.
#[test]
fn gemma3_generate_streams_llama_cpp_tokens() {
    use wisp::model::generate::{generate, Finish, GenParams};
    let path = model_path("WISP_MODEL", "gemma-3-270m-q4_k_m.gguf")
        .expect("gemma-3-270m-q4_k_m.gguf is missing: run scripts/fetch-model.sh");
    let case = load_case("gemma3-270m-q4_k_m.once_upon_a_time.json");
    let file = GgufFile::open(&path).expect("model opens");
    let tok = wisp::model::tokenizer::Tokenizer::from_gguf(file.gguf()).expect("tokenizer");
    let want_text = tok.decode(&case.greedy_ids[..16]).expect("decodes");
    for gpu in common::devices() {
        let name = &gpu.caps.adapter.name;
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 64, &mut |_, _| {})).expect("model loads");
        let mut streamed = String::new();
        let params = GenParams {
            max_tokens: 16,
            ..GenParams::default()
        };
        let stats = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &case.prompt_ids,
            &params,
            &mut |t| {
                streamed.push_str(&t.text);
                true
            },
        ))
        .expect("generates");
        assert_eq!(stats.generated, case.greedy_ids[..16], "[{name}]");
        assert_eq!(stats.finish, Finish::Length);
        assert_eq!(streamed + &stats.tail, want_text, "[{name}]");
        // The cache holds the prompt and every generated token but the last.
        assert_eq!(model.tokens().len(), case.prompt_ids.len() + 15);
        // A stop string ends generation before it, mid-token if need be.
        model.reset();
        let stop = GenParams {
            max_tokens: 8,
            stop: vec!["little".into()],
            ..GenParams::default()
        };
        let stats = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &case.prompt_ids,
            &stop,
            &mut |_| true,
        ))
        .expect("generates");
        let cut = want_text.find("little").expect("the text has 'little'");
        assert_eq!(
            (stats.finish, stats.text.as_str()),
            (Finish::Stop, &want_text[..cut]),
            "[{name}]"
        );
        // Outside the layers: embedding, its scale, the first norm; the head's matvec and its
        // two argmax passes.
        assert_decode_dispatches(&gpu, &mut model, 6);
    }
}

/// A chat turn that reuses the KV cache of the previous turn gives the same tokens as running
/// the whole conversation from an empty cache (SmolLM2's ChatML template); decode steps run 8 dispatches per layer (9 at `fast`).
#[test]
fn smollm2_chat_turns_reuse_the_cache() {
    use wisp::model::chat::{encode_prompt, ChatTemplate, Message, TemplateSource};
    use wisp::model::generate::{generate, GenParams};
    let path = model_path("WISP_SMOLLM2_MODEL", "SmolLM2-135M-Instruct.Q4_1.gguf")
        .expect("SmolLM2-135M-Instruct.Q4_1.gguf is missing: run scripts/fetch-model.sh smollm2");
    let file = GgufFile::open(&path).expect("model opens");
    let tok = wisp::model::tokenizer::Tokenizer::from_gguf(file.gguf()).expect("tokenizer");
    let tmpl = ChatTemplate::for_model(&tok).expect("template");
    assert_eq!(tmpl.source(), TemplateSource::Model);
    let params = GenParams {
        max_tokens: 6,
        ..GenParams::default()
    };
    for gpu in common::devices() {
        let name = &gpu.caps.adapter.name;
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 256, &mut |_, _| {})).expect("model loads");
        let mut msgs = vec![Message::new("user", "What is the capital of France?")];
        let ids =
            encode_prompt(&tok, &tmpl.render(&msgs, true).expect("renders")).expect("encodes");
        assert_eq!(
            ids[..3],
            [1, 9690, 198],
            "[{name}] <|im_start|>system\\n opens the prompt"
        );
        let first =
            pollster::block_on(generate(&mut model, &gpu, &tok, &ids, &params, &mut |_| {
                true
            }))
            .expect("turn 1");
        msgs.push(Message::new("assistant", &first.text));
        msgs.push(Message::new("user", "And of Italy?"));
        let ids =
            encode_prompt(&tok, &tmpl.render(&msgs, true).expect("renders")).expect("encodes");
        let keep = model
            .tokens()
            .iter()
            .zip(&ids)
            .take_while(|(a, b)| a == b)
            .count();
        assert!(
            keep + 10 > model.tokens().len(),
            "[{name}] only {keep} cached tokens reused"
        );
        model.truncate(keep);
        let reused = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &ids[keep..],
            &params,
            &mut |_| true,
        ))
        .expect("turn 2");
        model.reset();
        let fresh =
            pollster::block_on(generate(&mut model, &gpu, &tok, &ids, &params, &mut |_| {
                true
            }))
            .expect("turn 2 from scratch");
        assert_eq!(reused.generated, fresh.generated, "[{name}]");
        // Outside the layers: embedding, the first norm; the head's matvec and its two argmax
        // passes.
        assert_decode_dispatches(&gpu, &mut model, 5);
        eprintln!(
            "[{name}] turn 2 reused {keep} of {} tokens: {:?}",
            ids.len(),
            reused.text
        );
    }
}

/// Speculative decoding with prompt lookup gives plain greedy decoding's tokens and text on both
/// real models, with drafts accepted (the prompt asks for a list to be repeated), and leaves the
/// cache as plain decoding does; a stop string inside an accepted run ends the text where plain
/// decoding ends it. Every adapter.
#[test]
fn lookup_drafting_gives_plain_greedy_tokens() {
    use wisp::model::draft::{DraftConfig, DraftKind};
    use wisp::model::generate::{generate, GenParams, GenStats};
    let models = [
        (
            "WISP_MODEL",
            "gemma-3-270m-q4_k_m.gguf",
            "scripts/fetch-model.sh",
        ),
        (
            "WISP_SMOLLM2_MODEL",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "scripts/fetch-model.sh smollm2",
        ),
    ];
    for (var, file, fetch) in models {
        let path =
            model_path(var, file).unwrap_or_else(|| panic!("{file} is missing: run {fetch}"));
        let file = GgufFile::open(&path).expect("model opens");
        let tok = wisp::model::tokenizer::Tokenizer::from_gguf(file.gguf()).expect("tokenizer");
        let prompt = tok
            .encode(
                "red, green, blue, yellow, red, green, blue, yellow, red, green, blue, yellow, red,",
                true,
            )
            .expect("encodes");
        for gpu in common::devices() {
            let name = &gpu.caps.adapter.name;
            let mut model = pollster::block_on(Model::load(&gpu, &file, 128, &mut |_, _| {}))
                .expect("model loads");
            let mut run = |params: &GenParams| -> (GenStats, String, Vec<u32>) {
                model.reset();
                let mut text = String::new();
                let stats = pollster::block_on(generate(
                    &mut model,
                    &gpu,
                    &tok,
                    &prompt,
                    params,
                    &mut |t| {
                        text.push_str(&t.text);
                        true
                    },
                ))
                .expect("generates");
                (stats, text, model.tokens().to_vec())
            };
            let plain = GenParams {
                max_tokens: 20,
                ..GenParams::default()
            };
            let drafted = GenParams {
                draft: Some(DraftConfig {
                    kind: DraftKind::Lookup,
                    max: 6,
                }),
                ..plain.clone()
            };
            let (a, text_a, cache_a) = run(&plain);
            let (b, text_b, cache_b) = run(&drafted);
            assert_eq!(b.generated, a.generated, "[{name}] {path:?}");
            assert_eq!((text_b, b.finish), (text_a.clone(), a.finish), "[{name}]");
            assert_eq!(
                cache_b, cache_a,
                "[{name}] the cache holds what plain decoding leaves"
            );
            assert!(
                b.accepted > 0 && b.passes < a.passes,
                "[{name}] {path:?}: drafts were accepted ({} of {}) and passes saved ({} / {}): {text_a:?}",
                b.accepted,
                b.drafted,
                b.passes,
                a.passes
            );
            eprintln!(
                "[{name}] {}: lookup drafted {}, accepted {}, {} passes for {} tokens (plain {})",
                path.display(),
                b.drafted,
                b.accepted,
                b.passes,
                b.generated.len(),
                a.passes
            );
            // A stop string the model produces: the same text, finish and cache with drafts.
            let stop = " blue";
            if text_a.contains(stop) {
                let (a, text_a, cache_a) = run(&GenParams {
                    stop: vec![stop.into()],
                    ..plain.clone()
                });
                let (b, text_b, cache_b) = run(&GenParams {
                    stop: vec![stop.into()],
                    ..drafted.clone()
                });
                assert_eq!(
                    (b.generated, text_b, b.finish),
                    (a.generated, text_a, a.finish)
                );
                assert_eq!(cache_b, cache_a, "[{name}] nothing past the stop is cached");
            }
        }
    }
}

/// A drafter that replays a script: for each proposal, the tokens that plain greedy decoding
/// produces next, spoiled as its mode says.
struct Scripted {
    /// Plain greedy decoding's output, after `prompt_len` tokens of history.
    plain: Vec<u32>,
    prompt_len: usize,
    mode: &'static str,
    n_vocab: u32,
    drafts: usize,
}

impl wisp::model::draft::Drafter for Scripted {
    fn propose(&mut self, history: &[u32], max: usize) -> Vec<u32> {
        let i = history.len() - self.prompt_len;
        let mut d: Vec<u32> = self
            .plain
            .iter()
            .skip(i)
            .take(max.min(5))
            .copied()
            .collect();
        let n = self.n_vocab;
        match self.mode {
            "wrong" => d.iter_mut().for_each(|t| *t = (*t + 1) % n),
            "middle" if d.len() > 1 => {
                let m = d.len() / 2;
                d[m] = (d[m] + 1) % n;
            }
            _ => {}
        }
        self.drafts += usize::from(!d.is_empty());
        d
    }

    fn feedback(&mut self, _: usize, _: usize) {}
}

/// `generate_with_drafter` with drafts all right, all wrong and wrong in the middle gives plain
/// greedy decoding's tokens, text, finish and cache (the tiny chat model: random weights,
/// SmolLM2's tokenizer), with the drafts counted; drafting refuses `fast` precision by name.
#[test]
fn scripted_drafts_give_plain_greedy_output() {
    use wisp::model::draft::{DraftConfig, DraftKind};
    use wisp::model::generate::{generate, generate_with_drafter, Drafting, GenParams};
    let Some((file, tok, prompt)) = tiny_chat() else {
        return;
    };
    let params = GenParams {
        max_tokens: 24,
        ..GenParams::default()
    };
    for gpu in common::devices() {
        let name = &gpu.caps.adapter.name;
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 64, &mut |_, _| {})).expect("loads");
        let plain = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &prompt,
            &params,
            &mut |_| true,
        ))
        .expect("generates");
        let plain_cache = model.tokens().to_vec();
        for mode in ["right", "wrong", "middle"] {
            model.reset();
            let mut d = Scripted {
                plain: plain.generated.clone(),
                prompt_len: prompt.len(),
                mode,
                n_vocab: model.cfg.n_vocab,
                drafts: 0,
            };
            let mut text = String::new();
            let s = pollster::block_on(generate_with_drafter(
                &mut model,
                &gpu,
                &tok,
                &prompt,
                &params,
                None,
                Drafting::Tokens(&mut d),
                &mut |t| {
                    text.push_str(&t.text);
                    true
                },
            ))
            .expect("generates with drafts");
            assert_eq!(s.generated, plain.generated, "[{name}] {mode}");
            assert_eq!(
                (s.text, s.finish),
                (plain.text.clone(), plain.finish),
                "[{name}] {mode}"
            );
            assert_eq!(text + &s.tail, plain.text, "[{name}] {mode}: streamed");
            assert_eq!(model.tokens(), plain_cache, "[{name}] {mode}: cache");
            assert!(d.drafts > 0 && s.drafted > 0, "[{name}] {mode}");
            match mode {
                "right" => assert_eq!(s.accepted, s.drafted, "[{name}]"),
                "wrong" => assert_eq!(s.accepted, 0, "[{name}]"),
                _ => assert!(s.accepted < s.drafted, "[{name}]"),
            }
            if mode == "right" {
                assert!(
                    s.passes * 3 < plain.passes,
                    "[{name}] {} / {}",
                    s.passes,
                    plain.passes
                );
            }
        }
        // Drafting at `fast` precision is refused by name.
        let draft = Some(DraftConfig {
            kind: DraftKind::Lookup,
            max: 4,
        });
        pollster::block_on(model.set_precision(&gpu, Precision::Fast)).expect("fast");
        let e = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &prompt,
            &GenParams {
                draft,
                ..params.clone()
            },
            &mut |_| true,
        ))
        .expect_err("fast with drafts is refused");
        assert!(e.to_string().contains("exact precision"), "{e}");
    }
}

/// The tiny chat model with its tokenizer and a short prompt.
fn tiny_chat() -> Option<(GgufFile, wisp::model::tokenizer::Tokenizer, Vec<u32>)> {
    let path = common::tiny_chat_model()?;
    let file = GgufFile::open(&path).expect("tiny model opens");
    let tok = wisp::model::tokenizer::Tokenizer::from_gguf(file.gguf()).expect("tokenizer");
    let prompt = tok
        .encode("Hello there, how are you?", true)
        .expect("encodes");
    Some((file, tok, prompt))
}

/// Under drafting (drafts wrong in the middle, so verify passes both accept and reject, with
/// every position's logits read back), log-probabilities, top logits, a stop string and
/// structured output (a JSON schema, by a scripted drafter and by lookup) give what plain
/// decoding gives: the same tokens, text, finish and cache, and the same log-probabilities.
#[test]
fn drafting_keeps_logprobs_stops_and_structured_output() {
    use wisp::model::draft::{DraftConfig, DraftKind};
    use wisp::model::generate::{
        generate_constrained, generate_with_drafter, Drafting, GenParams, GenStats, Token,
        TokenConstraint,
    };
    let Some((file, tok, prompt)) = tiny_chat() else {
        return;
    };
    for gpu in common::devices() {
        let name = gpu.caps.adapter.name.clone();
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 128, &mut |_, _| {})).expect("loads");
        let n_vocab = model.cfg.n_vocab;
        // Runs plainly (`script` None) or with a scripted drafter wrong in the middle.
        let mut run = |params: &GenParams,
                       c: Option<&mut dyn TokenConstraint>,
                       script: Option<&[u32]>|
         -> (GenStats, Vec<Token>, Vec<u32>) {
            model.reset();
            let mut toks = Vec::new();
            let mut keep = |t: &Token| {
                toks.push(t.clone());
                true
            };
            let s = match script {
                None => pollster::block_on(generate_constrained(
                    &mut model, &gpu, &tok, &prompt, params, c, &mut keep,
                )),
                Some(plain) => {
                    let mut d = Scripted {
                        plain: plain.to_vec(),
                        prompt_len: prompt.len(),
                        mode: "middle",
                        n_vocab,
                        drafts: 0,
                    };
                    pollster::block_on(generate_with_drafter(
                        &mut model,
                        &gpu,
                        &tok,
                        &prompt,
                        params,
                        c,
                        Drafting::Tokens(&mut d),
                        &mut keep,
                    ))
                }
            }
            .expect("generates");
            (s, toks, model.tokens().to_vec())
        };
        // Log-probabilities and top logits, with a stop string taken from the plain text.
        let base = GenParams {
            max_tokens: 24,
            logprobs: Some(3),
            top_logits: 2,
            ..GenParams::default()
        };
        let (free, toks, _) = run(&base, None, None);
        // A stop string: the text of a token past the 12th that has not appeared before it.
        let mut before = String::new();
        let mut stop = None;
        for (i, t) in toks.iter().enumerate() {
            if i >= 12 && t.text.trim().len() >= 2 && !before.contains(t.text.as_str()) {
                stop = Some(t.text.clone());
                break;
            }
            before.push_str(&t.text);
        }
        let stop = stop.unwrap_or_else(|| panic!("[{name}] no stop string in {:?}", free.text));
        let params = GenParams {
            stop: vec![stop],
            ..base.clone()
        };
        let (a, ta, ca) = run(&params, None, None);
        let (b, tb, cb) = run(&params, None, Some(&a.generated));
        assert_eq!(a.finish, wisp::model::generate::Finish::Stop, "[{name}]");
        assert_eq!(
            (&b.generated, &b.text, b.finish, &cb),
            (&a.generated, &a.text, a.finish, &ca),
            "[{name}] with log-probabilities and a stop string"
        );
        assert!(
            b.drafted > 0 && b.accepted > 0 && b.accepted < b.drafted,
            "[{name}] {} of {} drafts accepted",
            b.accepted,
            b.drafted
        );
        assert_eq!(ta.len(), tb.len(), "[{name}] tokens streamed");
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!((x.id, &x.text), (y.id, &y.text), "[{name}]");
            let ids = |v: &[(u32, f32)]| v.iter().map(|t| t.0).collect::<Vec<_>>();
            assert_eq!(ids(&x.top), ids(&y.top), "[{name}] top logits");
            assert_eq!(ids(&x.top_logprobs), ids(&y.top_logprobs), "[{name}]");
            let (lx, ly) = (x.logprob.expect("logprob"), y.logprob.expect("logprob"));
            assert!((lx - ly).abs() < 1e-3, "[{name}] logprob {lx} against {ly}");
            for (u, v) in x.top.iter().zip(&y.top) {
                assert!(
                    (u.1 - v.1).abs() < 1e-3,
                    "[{name}] logit {} against {}",
                    u.1,
                    v.1
                );
            }
        }
        // Structured output: the constraint's masks apply at every position of a verify pass.
        let grammar = wisp::model::grammar::Grammar::new(&tok, n_vocab as usize).expect("grammar");
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["name", "n"]
        });
        let json = GenParams {
            max_tokens: 40,
            ..GenParams::default()
        };
        let mut c = grammar.json_schema(&schema).expect("schema");
        let (a, _, ca) = run(&json, Some(&mut c), None);
        let mut c = grammar.json_schema(&schema).expect("schema");
        let (b, _, cb) = run(&json, Some(&mut c), Some(&a.generated));
        assert!(a.text.starts_with('{'), "[{name}] {:?}", a.text);
        assert_eq!(
            (&b.generated, &b.text, b.finish, &cb),
            (&a.generated, &a.text, a.finish, &ca),
            "[{name}] structured output, scripted drafts"
        );
        assert!(b.drafted > 0 && b.accepted > 0, "[{name}]");
        let lookup = GenParams {
            draft: Some(DraftConfig {
                kind: DraftKind::Lookup,
                max: 4,
            }),
            ..json.clone()
        };
        let mut c = grammar.json_schema(&schema).expect("schema");
        let (l, _, cl) = run(&lookup, Some(&mut c), None);
        assert_eq!(
            (&l.generated, &l.text, &cl),
            (&a.generated, &a.text, &ca),
            "[{name}] structured output, lookup drafts"
        );
    }
}

/// Chi-square's 0.001 quantile for 1 to 15 degrees of freedom.
const CHI2_999: [f64; 15] = [
    10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26, 32.91, 34.53,
    36.12, 37.70,
];

/// Pearson's two-sample chi-square (homogeneity) of two count tables over the same categories,
/// and its degrees of freedom (categories seen, minus one).
fn chi_square_two(a: &[usize], b: &[usize]) -> (f64, usize) {
    let (na, nb) = (
        a.iter().sum::<usize>() as f64,
        b.iter().sum::<usize>() as f64,
    );
    let mut x2 = 0.0;
    let mut k = 0;
    for (&x, &y) in a.iter().zip(b) {
        let t = (x + y) as f64;
        if t == 0.0 {
            continue;
        }
        k += 1;
        let (ea, eb) = (t * na / (na + nb), t * nb / (na + nb));
        x2 += (x as f64 - ea).powi(2) / ea + (y as f64 - eb).powi(2) / eb;
    }
    (x2, k.max(1) - 1)
}

/// Speculative sampling gives plain sampling's distribution: over many seeds, the first three
/// sampled tokens (top-k 2, so 8 outcomes) of the tiny chat model are counted without drafting
/// and with drafts from a point mass (fixed tokens, as prompt lookup proposes) and from a
/// draft model (the model itself, sampled: its drafts mostly stand); a two-sample chi-square test at the 0.001 level
/// finds no difference. The drafts are both accepted and rejected.
#[test]
fn speculative_sampling_matches_plain_sampling() {
    use wisp::model::draft::{DraftModel, Drafter};
    use wisp::model::generate::{generate, generate_with_drafter, Drafting, GenParams};
    use wisp::model::sampler::SamplerConfig;
    let Some((file, tok, prompt)) = tiny_chat() else {
        return;
    };
    /// Proposes fixed tokens after the prompt's first sampled token.
    struct Fixed(Vec<u32>);
    impl Drafter for Fixed {
        fn propose(&mut self, _: &[u32], max: usize) -> Vec<u32> {
            self.0.iter().take(max).copied().collect()
        }
        fn feedback(&mut self, _: usize, _: usize) {}
    }
    let seeds = 160u64;
    for gpu in common::devices() {
        let name = gpu.caps.adapter.name.clone();
        let mut model =
            pollster::block_on(Model::load(&gpu, &file, 32, &mut |_, _| {})).expect("loads");
        let own = pollster::block_on(Model::load(&gpu, &file, 32, &mut |_, _| {})).expect("loads");
        let mut dm = DraftModel::new(own, &tok, &tok, 2).expect("same vocabulary");
        let sampler = |seed| SamplerConfig {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            ..SamplerConfig::default()
        };
        let params = |seed| GenParams {
            max_tokens: 3,
            sampler: sampler(seed),
            ..GenParams::default()
        };
        // The greedy continuation, to draft from.
        model.reset();
        let greedy = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &prompt,
            &GenParams {
                max_tokens: 3,
                ..GenParams::default()
            },
            &mut |_| true,
        ))
        .expect("generates");
        let mut tables: Vec<(&str, Vec<usize>, usize, usize)> = Vec::new();
        let mut outcomes: Vec<Vec<u32>> = Vec::new();
        for mode in ["plain", "fixed", "draft model"] {
            let mut counts = Vec::new();
            let (mut drafted, mut accepted) = (0, 0);
            for seed in 0..seeds {
                model.reset();
                let p = params(seed);
                let s = match mode {
                    "plain" => pollster::block_on(generate(
                        &mut model,
                        &gpu,
                        &tok,
                        &prompt,
                        &p,
                        &mut |_| true,
                    )),
                    "fixed" => {
                        let mut d = Fixed(greedy.generated[1..].to_vec());
                        pollster::block_on(generate_with_drafter(
                            &mut model,
                            &gpu,
                            &tok,
                            &prompt,
                            &p,
                            None,
                            Drafting::Tokens(&mut d),
                            &mut |_| true,
                        ))
                    }
                    _ => {
                        dm.start(Some(&p.sampler));
                        pollster::block_on(generate_with_drafter(
                            &mut model,
                            &gpu,
                            &tok,
                            &prompt,
                            &p,
                            None,
                            Drafting::Model(&mut dm, 2),
                            &mut |_| true,
                        ))
                    }
                }
                .expect("generates");
                drafted += s.drafted;
                accepted += s.accepted;
                let k = match outcomes.iter().position(|o| *o == s.generated) {
                    Some(k) => k,
                    None => {
                        outcomes.push(s.generated.clone());
                        outcomes.len() - 1
                    }
                };
                if counts.len() <= k {
                    counts.resize(k + 1, 0);
                }
                counts[k] += 1;
            }
            tables.push((mode, counts, drafted, accepted));
        }
        let width = outcomes.len();
        assert!(width <= 8, "[{name}] top-k 2 over 3 tokens: {outcomes:?}");
        let plain = {
            let mut c = tables[0].1.clone();
            c.resize(width, 0);
            c
        };
        for (mode, counts, drafted, accepted) in &tables[1..] {
            let mut c = counts.clone();
            c.resize(width, 0);
            let (x2, df) = chi_square_two(&plain, &c);
            assert!(
                x2 < CHI2_999[df.clamp(1, 15) - 1],
                "[{name}] {mode}: chi-square {x2:.1} (df {df}): plain {plain:?} against {c:?}"
            );
            // The model drafting for itself proposes from p itself: its drafts may all stand.
            let rejects = *mode == "fixed";
            assert!(
                *drafted > 0 && *accepted > 0 && (accepted < drafted || !rejects),
                "[{name}] {mode}: {accepted} of {drafted} drafts accepted"
            );
        }
    }
}

/// A draft model with SmolLM2's vocabulary drafts for SmolLM2-135M-Instruct: the tiny chat
/// model (random weights: drafts mostly rejected) and SmolLM2 itself (every draft accepted:
/// the ceiling of the method) give plain greedy decoding's tokens and cache. A vocabulary that
/// differs (Gemma 3's) is refused, naming the first token that differs. On the first adapter
/// only (CI's time): what it tests is the orchestration of two models, and every kernel they
/// run is tested on each adapter elsewhere.
#[test]
fn a_draft_model_drafts_for_smollm2() {
    use wisp::model::draft::{check_vocab, DraftConfig, DraftKind, DraftModel};
    use wisp::model::generate::GenParams;
    use wisp::model::generate::{generate, generate_full, generate_with_drafter, Drafting};
    let Some(tiny) = common::tiny_chat_model() else {
        return;
    };
    let smol = model_path("WISP_SMOLLM2_MODEL", "SmolLM2-135M-Instruct.Q4_1.gguf")
        .expect("SmolLM2 is missing: run scripts/fetch-model.sh smollm2");
    let gemma = model_path("WISP_MODEL", "gemma-3-270m-q4_k_m.gguf")
        .expect("Gemma 3 is missing: run scripts/fetch-model.sh");
    let smol = GgufFile::open(&smol).expect("opens");
    let tiny = GgufFile::open(&tiny).expect("opens");
    let tok_of =
        |f: &GgufFile| wisp::model::tokenizer::Tokenizer::from_gguf(f.gguf()).expect("tok");
    let tok = tok_of(&smol);
    let gemma_tok = tok_of(&GgufFile::open(&gemma).expect("opens"));
    let e = check_vocab(&gemma_tok, &tok).expect_err("Gemma's vocabulary is not SmolLM2's");
    let msg = e.to_string();
    assert!(
        msg.contains("vocabulary") && msg.contains("token 0 is"),
        "{msg}"
    );
    check_vocab(&tok_of(&tiny), &tok).expect("the tiny chat model has SmolLM2's vocabulary");
    let prompt = tok
        .encode(
            "The days of the week are Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday. The days of the week are",
            true,
        )
        .expect("encodes");
    let params = GenParams {
        max_tokens: 16,
        ..GenParams::default()
    };
    for gpu in common::devices().into_iter().take(1) {
        let name = gpu.caps.adapter.name.clone();
        let mut target =
            pollster::block_on(Model::load(&gpu, &smol, 128, &mut |_, _| {})).expect("loads");
        let plain = pollster::block_on(generate(
            &mut target,
            &gpu,
            &tok,
            &prompt,
            &params,
            &mut |_| true,
        ))
        .expect("generates");
        let plain_cache = target.tokens().to_vec();
        for (which, file) in [("tiny", &tiny), ("itself", &smol)] {
            let m =
                pollster::block_on(Model::load(&gpu, file, 128, &mut |_, _| {})).expect("loads");
            let mut dm = DraftModel::new(m, &tok_of(file), &tok, 4).expect("same vocabulary");
            target.reset();
            let s = pollster::block_on(generate_with_drafter(
                &mut target,
                &gpu,
                &tok,
                &prompt,
                &params,
                None,
                Drafting::Model(&mut dm, 4),
                &mut |_| true,
            ))
            .expect("generates with a draft model");
            assert_eq!(
                (&s.generated, &s.text, s.finish),
                (&plain.generated, &plain.text, plain.finish),
                "[{name}] drafted by {which}"
            );
            assert_eq!(target.tokens(), plain_cache, "[{name}] {which}: cache");
            assert!(s.drafted > 0, "[{name}] {which}");
            if which == "itself" {
                assert_eq!(s.accepted, s.drafted, "[{name}] its own drafts all stand");
                assert!(
                    s.passes * 3 < plain.passes,
                    "[{name}] {} passes against {}",
                    s.passes,
                    plain.passes
                );
            }
            if which == "tiny" {
                continue;
            }
            // Through the parameters (with the cost hold), and refused without a model.
            let by_params = GenParams {
                draft: Some(DraftConfig {
                    kind: DraftKind::Model,
                    max: 4,
                }),
                ..params.clone()
            };
            target.reset();
            let s = pollster::block_on(generate_full(
                &mut target,
                &gpu,
                &tok,
                &prompt,
                &by_params,
                None,
                Some(&mut dm),
                &mut |_| true,
            ))
            .expect("generates");
            assert_eq!(s.generated, plain.generated, "[{name}] {which}");
            target.reset();
            let e = pollster::block_on(generate(
                &mut target,
                &gpu,
                &tok,
                &prompt,
                &by_params,
                &mut |_| true,
            ))
            .expect_err("no draft model given");
            assert!(e.to_string().contains("none is loaded"), "{e}");
        }
    }
}
