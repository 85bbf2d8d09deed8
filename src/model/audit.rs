//! The load-time audit: every metadata key in the architecture's namespace and every tensor is
//! either used by Wisp's forward pass, known to make no difference, or refused with a reason.
//! A file that passes computes exactly what its architecture defines; anything else is an error
//! naming the key or tensor ([`ConfigError::Refused`](super::config::ConfigError::Refused)),
//! never a silently different answer. The same check backs `wisp info`'s "runs" line and the
//! browser's will-it-run, both from the header alone.

use super::config::{Arch, Config, Refusal};
use crate::gguf::{Gguf, MetaValue};

/// What Wisp does with one metadata key.
enum KeyUse {
    /// Read by [`Config::read`].
    Used,
    /// Known not to change the computation (with this value).
    NoEffect,
    /// Changes the math in a way Wisp does not compute.
    Refused(String),
}

/// Keys (after `<arch>.`) that every architecture reads.
const USED: &[&str] = &[
    "block_count",
    "context_length",
    "embedding_length",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.freq_base",
    "rope.dimension_count",
    "rope.scaling.factor",
    "rope.scale_linear",
    "rope.scaling.attn_factor",
    "rope.scaling.original_context_length",
    "rope.scaling.yarn_beta_fast",
    "rope.scaling.yarn_beta_slow",
];

/// Keys that never change what a causal decoder computes.
const NO_EFFECT: &[(&str, &str)] = &[
    (
        "vocab_size",
        "the vocabulary size comes from token_embd.weight",
    ),
    ("rope.scaling.finetuned", "informational"),
    ("tensor_data_layout", "informational"),
    ("pooling_type", "applies to embedding outputs only"),
];

/// Keys whose neutral value makes no difference; any other value is refused with the reason.
const NEUTRAL: &[(&str, f64, &str)] = &[
    (
        "expert_count",
        0.0,
        "mixture-of-experts layers are not implemented",
    ),
    (
        "expert_used_count",
        0.0,
        "mixture-of-experts layers are not implemented",
    ),
    (
        "expert_shared_count",
        0.0,
        "mixture-of-experts layers are not implemented",
    ),
    ("logit_scale", 1.0, "scaled logits are not implemented"),
    (
        "embedding_scale",
        1.0,
        "a custom embedding scale is not implemented",
    ),
    ("residual_scale", 1.0, "a residual scale is not implemented"),
    (
        "attention.scale",
        0.0,
        "a custom attention scale is not implemented",
    ),
    (
        "attention.max_alibi_bias",
        0.0,
        "ALiBi attention biases are not implemented",
    ),
    (
        "attention.clamp_kqv",
        0.0,
        "clamping Q, K and V is not implemented",
    ),
    (
        "rope.scaling.yarn_log_multiplier",
        0.0,
        "YaRN's log multiplier (DeepSeek) is not implemented",
    ),
];

fn number(v: &MetaValue) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_i128().map(|i| i as f64))
        .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))
}

fn classify(cfg: &Config, suffix: &str, v: &MetaValue) -> KeyUse {
    let arch = cfg.arch;
    if USED.contains(&suffix) {
        return KeyUse::Used;
    }
    if NO_EFFECT.iter().any(|(k, _)| *k == suffix) {
        return KeyUse::NoEffect;
    }
    if let Some((_, neutral, reason)) = NEUTRAL.iter().find(|(k, ..)| *k == suffix) {
        return match number(v) {
            Some(x) if x == *neutral => KeyUse::NoEffect,
            _ => KeyUse::Refused(reason.to_string()),
        };
    }
    let gemma = arch.is_gemma();
    match suffix {
        "rope.scaling.type" => match v.as_str() {
            Some("none" | "linear" | "yarn") => KeyUse::Used,
            Some(other) => KeyUse::Refused(format!(
                "RoPE scaling type '{other}' is not implemented (Wisp computes none, linear and yarn)"
            )),
            None => KeyUse::Refused("should be a string".into()),
        },
        "attention.causal" => match v.as_bool() {
            Some(true) => KeyUse::NoEffect,
            _ => KeyUse::Refused("non-causal attention is not implemented".into()),
        },
        "attention.sliding_window" if gemma => KeyUse::Used,
        // llama.cpp disables Phi-3's sliding window (full attention); so does Wisp.
        "attention.sliding_window" if arch == Arch::Phi3 => KeyUse::NoEffect,
        "attention.sliding_window" => match v.as_u32() {
            Some(w) if w >= cfg.n_ctx_train => KeyUse::NoEffect,
            _ => KeyUse::Refused(format!(
                "a sliding window shorter than the context is not part of the {} architecture in Wisp",
                arch.name()
            )),
        },
        "attention.sliding_window_pattern" | "rope.freq_base_swa" if gemma => KeyUse::Used,
        "attn_logit_softcapping" if arch == Arch::Gemma2 => KeyUse::Used,
        "final_logit_softcapping" if gemma => KeyUse::Used,
        "attn_logit_softcapping" | "final_logit_softcapping" => match number(v) {
            Some(0.0) => KeyUse::NoEffect,
            _ => KeyUse::Refused(format!(
                "logit soft-capping is not part of the {} architecture in Wisp",
                arch.name()
            )),
        },
        "rope.scaling.yarn_ext_factor" => {
            let want = if cfg.yarn.is_some() { 1.0 } else { 0.0 };
            match number(v) {
                Some(x) if x == want || x < 0.0 => KeyUse::NoEffect, // negative: unset
                _ => KeyUse::Refused(format!(
                    "a YaRN extrapolation factor other than {want} is not implemented"
                )),
            }
        }
        "rope.scaling.yarn_attn_factor" => match number(v) {
            Some(1.0) => KeyUse::NoEffect,
            _ => KeyUse::Refused("a YaRN attention factor other than 1 is not implemented".into()),
        },
        "rope.dimension_count_swa" | "attention.key_length_swa" | "attention.value_length_swa" => {
            let same = match suffix {
                "rope.dimension_count_swa" => cfg.n_rot,
                _ => cfg.head_dim,
            };
            match v.as_u32() {
                Some(x) if x == same => KeyUse::NoEffect,
                _ => KeyUse::Refused(
                    "different head or rotary sizes on sliding-window layers are not implemented"
                        .into(),
                ),
            }
        }
        _ => KeyUse::Refused(
            "an unknown key: Wisp cannot tell whether it changes the computation".into(),
        ),
    }
}

/// Per-layer tensors (after `blk.N.`) the forward pass reads, required and optional.
fn layer_tensors(cfg: &Config) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut req = vec!["attn_norm.weight", "attn_output.weight", "ffn_norm.weight"];
    let mut opt = vec!["attn_q.bias", "attn_k.bias", "attn_v.bias"];
    if cfg.fused_qkv {
        req.push("attn_qkv.weight");
        opt.clear();
    } else {
        req.extend(["attn_q.weight", "attn_k.weight", "attn_v.weight"]);
    }
    if cfg.arch == Arch::Qwen2 {
        req.append(&mut opt);
    }
    if cfg.fused_gate_up {
        req.extend(["ffn_up.weight", "ffn_down.weight"]);
    } else {
        req.extend(["ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]);
    }
    if cfg.arch.has_qk_norm() {
        req.extend(["attn_q_norm.weight", "attn_k_norm.weight"]);
    }
    if cfg.arch.is_gemma() {
        req.extend(["post_attention_norm.weight", "post_ffw_norm.weight"]);
    }
    (req, opt)
}

/// Why a tensor the forward pass does not read is refused.
fn tensor_reason(cfg: &Config, name: &str) -> String {
    if name.contains("_exps") || name.contains("ffn_gate_inp") || name.contains("_shexp") {
        "mixture-of-experts layers are not implemented".into()
    } else if name.ends_with(".bias") {
        "a bias on this tensor is not implemented".into()
    } else if name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|i| i.parse::<u32>().ok())
        .is_some_and(|i| i >= cfg.n_layer)
    {
        format!("a layer beyond block_count {}", cfg.n_layer)
    } else {
        format!(
            "not part of the {} forward pass: Wisp would have to know what it computes",
            cfg.arch.name()
        )
    }
}

/// Everything in `g` that `cfg`'s forward pass would not compute exactly; empty when the model
/// runs. Keys outside the architecture's namespace (`general.*`, `tokenizer.*`) do not change
/// the forward pass, except `split.count` (a model in several files).
pub fn audit(g: &Gguf, cfg: &Config) -> Vec<Refusal> {
    let mut out = Vec::new();
    let refuse = |out: &mut Vec<Refusal>, name: &str, reason: String| {
        out.push(Refusal {
            name: name.to_string(),
            reason,
        })
    };
    let prefix = format!("{}.", cfg.arch.name());
    for (k, v) in &g.metadata {
        if let Some(suffix) = k.strip_prefix(&prefix) {
            if let KeyUse::Refused(reason) = classify(cfg, suffix, v) {
                refuse(&mut out, k, reason);
            }
        }
    }
    if let Some(n) = g.get("split.count").and_then(MetaValue::as_u64) {
        if n > 1 {
            refuse(
                &mut out,
                "split.count",
                format!("the model is split over {n} files: merge them into one GGUF first"),
            );
        }
    }

    // Tensors: every one read, none missing.
    let (req, opt) = layer_tensors(cfg);
    let mut known: std::collections::HashSet<String> = ["token_embd.weight", "output_norm.weight"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut optional_global = vec!["output.weight", "rope_freqs.weight"];
    if !matches!(cfg.rope_factors, super::config::RopeFactors::Freqs) {
        optional_global.extend(["rope_factors_short.weight", "rope_factors_long.weight"]);
    }
    let mut required: Vec<String> = known.iter().cloned().collect();
    for il in 0..cfg.n_layer {
        for s in &req {
            let n = format!("blk.{il}.{s}");
            required.push(n.clone());
            known.insert(n);
        }
        for s in &opt {
            known.insert(format!("blk.{il}.{s}"));
        }
    }
    known.extend(optional_global.iter().map(|s| s.to_string()));
    required.sort();
    for name in required {
        if g.tensor(&name).is_none() {
            refuse(
                &mut out,
                &name,
                format!("missing: the {} forward pass needs it", cfg.arch.name()),
            );
        }
    }
    if matches!(
        cfg.rope_factors,
        super::config::RopeFactors::LongRope { .. }
    ) {
        for (name, other) in [
            ("rope_factors_short.weight", "rope_factors_long.weight"),
            ("rope_factors_long.weight", "rope_factors_short.weight"),
        ] {
            if g.tensor(name).is_some() && g.tensor(other).is_none() {
                refuse(
                    &mut out,
                    name,
                    format!("LongRoPE needs {other} as well: the file has one factor set"),
                );
            }
        }
    }
    for t in &g.tensors {
        if !known.contains(&t.name) {
            let reason = tensor_reason(cfg, &t.name);
            refuse(&mut out, &t.name, reason);
        } else if !t.ty.is_supported() {
            refuse(
                &mut out,
                &t.name,
                format!("block type {} is not supported", t.ty),
            );
        }
    }
    out
}
