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
/// SmolLM2's tokenizer), with the drafts counted; drafting refuses sampling and `fast` precision
/// by name.
#[test]
fn scripted_drafts_give_plain_greedy_output() {
    use wisp::model::draft::{DraftConfig, DraftKind};
    use wisp::model::generate::{generate, generate_with_drafter, GenParams};
    let Some(path) = common::tiny_chat_model() else {
        return;
    };
    let file = GgufFile::open(&path).expect("tiny model opens");
    let tok = wisp::model::tokenizer::Tokenizer::from_gguf(file.gguf()).expect("tokenizer");
    let prompt = tok
        .encode("Hello there, how are you?", true)
        .expect("encodes");
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
                &mut d,
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
        // Drafting with what it cannot reproduce is refused by name.
        let draft = Some(DraftConfig {
            kind: DraftKind::Lookup,
            max: 4,
        });
        let sampled = GenParams {
            draft: draft.clone(),
            sampler: wisp::model::sampler::SamplerConfig {
                temperature: 0.8,
                ..Default::default()
            },
            ..params.clone()
        };
        model.reset();
        let e = pollster::block_on(generate(
            &mut model,
            &gpu,
            &tok,
            &prompt,
            &sampled,
            &mut |_| true,
        ))
        .expect_err("sampling with drafts is refused");
        assert!(e.to_string().contains("greedy"), "{e}");
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
