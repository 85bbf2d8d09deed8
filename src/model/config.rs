//! Model configuration, read only from GGUF metadata.

use std::sync::Arc;

use crate::gguf::{Gguf, GgufError, MetaValue};
use crate::ops::rope::{self, Rope, Yarn};

/// Architectures Wisp runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM2, Mistral, TinyLlama.
    Llama,
    Qwen2,
    /// Qwen 3: QK-norm.
    Qwen3,
    /// Phi-3/3.5: fused QKV and gate+up tensors, LongRoPE frequency factors.
    Phi3,
    /// Gemma 2: pre+post norms, GeGLU, embedding scale, attention and final logit soft-capping,
    /// sliding-window attention on even layers.
    Gemma2,
    /// Gemma 3: QK-norm, pre+post norms, GeGLU, embedding scale, sliding-window layers, tied output.
    Gemma3,
}

impl Arch {
    /// The `general.architecture` names Wisp runs.
    pub const NAMES: &'static str = "llama, qwen2, qwen3, phi3, gemma2, gemma3";

    fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "phi3" => Arch::Phi3,
            "gemma2" => Arch::Gemma2,
            "gemma3" => Arch::Gemma3,
            _ => return None,
        })
    }

    /// The metadata prefix (`general.architecture`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Phi3 => "phi3",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3",
        }
    }

    /// Gemma's layer structure: post-norms, GeGLU, embedding scale.
    pub fn is_gemma(self) -> bool {
        matches!(self, Arch::Gemma2 | Arch::Gemma3)
    }

    /// Per-head RMSNorm of q and k before RoPE.
    pub fn has_qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Gemma3)
    }
}

/// How RoPE pairs dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Pairs (2i, 2i + 1): Llama.
    Normal,
    /// Pairs (i, i + n_rot / 2): Qwen, Phi-3, Gemma.
    Neox,
}

/// Where RoPE's per-pair frequency factors come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeFactors {
    None,
    /// `rope_freqs.weight` (Llama 3.1+), on every layer.
    Freqs,
    /// Phi-3's LongRoPE: `rope_factors_short.weight` while the context is at most `orig_ctx`,
    /// `rope_factors_long.weight` beyond (llama.cpp's `get_rope_factors`).
    LongRope {
        orig_ctx: u32,
    },
}

/// A model feature Wisp cannot compute, named: a metadata key or a tensor, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The metadata key or tensor name.
    pub name: String,
    /// What it asks for that Wisp does not compute.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}': {}", self.name, self.reason)
    }
}

/// Errors in a model's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("architecture '{0}' is not supported (supported: {names})", names = Arch::NAMES)]
    UnsupportedArch(String),
    #[error("the file has no general.architecture")]
    NoArch,
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("inconsistent configuration: {0}")]
    Invalid(String),
    #[error("the model needs what Wisp does not compute: {}", list(.0))]
    Refused(Vec<Refusal>),
}

fn list(r: &[Refusal]) -> String {
    r.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub n_layer: u32,
    pub n_embd: u32,
    pub n_ff: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub n_vocab: u32,
    pub eps: f32,
    pub rope_mode: RopeMode,
    /// Rotated dimensions per head (`rope.dimension_count`, default head_dim).
    pub n_rot: u32,
    /// RoPE base of global-attention layers.
    pub rope_base: f32,
    /// RoPE base of sliding-window layers (Gemma 3: 10 000).
    pub rope_base_local: f32,
    /// Linear RoPE position scale of global layers: 1 / `rope.scaling.factor` (1 without).
    pub rope_scale: f32,
    /// The same for sliding-window layers (Gemma 3: 1).
    pub rope_scale_local: f32,
    /// YaRN (`rope.scaling.type = yarn`).
    pub yarn: Option<Yarn>,
    /// `rope.scaling.attn_factor` (1 when absent).
    pub rope_attn_factor: f32,
    /// Per-pair frequency factors.
    pub rope_factors: RopeFactors,
    /// Sliding window in positions (0: none).
    pub window: u32,
    /// Layer `il` slides when `il % swa_period < swa_period − 1` (Gemma 2: 2, Gemma 3: 6).
    pub swa_period: u32,
    /// Context length the model was trained for.
    pub n_ctx_train: u32,
    /// Multiplier of the attention scores (1/√head_dim unless the architecture says otherwise).
    pub attn_scale: f32,
    /// Attention scores become `c·tanh(s/c)` (Gemma 2: 50); 0 for none.
    pub attn_softcap: f32,
    /// Logits become `c·tanh(l/c)` (Gemma 2: 30); 0 for none.
    pub final_softcap: f32,
    /// Multiplier of the token embeddings (Gemma: √n_embd).
    pub embd_scale: f32,
    /// The output projection is the token embedding (no `output.weight`).
    pub tied_output: bool,
    /// Q, K and V come from one `attn_qkv.weight` (Phi-3), split by rows at load.
    pub fused_qkv: bool,
    /// Gate and up come from one `ffn_up.weight` of 2·n_ff rows, gate first (Phi-3).
    pub fused_gate_up: bool,
}

/// An optional metadata value of the expected type: a value of another type is an error
/// naming the key, never a silent default.
fn opt<T>(
    g: &Gguf,
    key: &str,
    what: &str,
    get: impl Fn(&MetaValue) -> Option<T>,
) -> Result<Option<T>, ConfigError> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => get(v).map(Some).ok_or_else(|| {
            ConfigError::Invalid(format!("'{key}' should be {what}, the file holds {v:?}"))
        }),
    }
}

fn opt_u32(g: &Gguf, key: &str) -> Result<Option<u32>, ConfigError> {
    opt(g, key, "an integer in u32 range", MetaValue::as_u32)
}

fn opt_f32(g: &Gguf, key: &str) -> Result<Option<f32>, ConfigError> {
    opt(g, key, "a float", MetaValue::as_f32)
}

impl Config {
    /// Reads the configuration of a supported architecture from `g`, after the audit
    /// ([`super::audit`]): a key or tensor that would change the math in a way Wisp does not
    /// compute is a [`ConfigError::Refused`] naming it.
    pub fn from_gguf(g: &Gguf) -> Result<Config, ConfigError> {
        let cfg = Config::read(g)?;
        let refused = super::audit::audit(g, &cfg);
        if refused.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Refused(refused))
        }
    }

    /// The configuration as the metadata states it, without the audit.
    pub fn read(g: &Gguf) -> Result<Config, ConfigError> {
        let name = g.architecture().ok_or(ConfigError::NoArch)?;
        let arch =
            Arch::from_name(name).ok_or_else(|| ConfigError::UnsupportedArch(name.to_string()))?;
        let key = |k: &str| format!("{name}.{k}");
        let n_layer = g.require_u32(&key("block_count"))?;
        let n_embd = g.require_u32(&key("embedding_length"))?;
        let n_ff = g.require_u32(&key("feed_forward_length"))?;
        let n_head = g.require_u32(&key("attention.head_count"))?;
        let n_head_kv = opt_u32(g, &key("attention.head_count_kv"))?.unwrap_or(n_head);
        if n_head == 0 || n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
            return Err(ConfigError::Invalid(format!(
                "{n_head} attention heads are not a multiple of {n_head_kv} key/value heads"
            )));
        }
        let head_dim = opt_u32(g, &key("attention.key_length"))?.unwrap_or(n_embd / n_head);
        let value_dim = opt_u32(g, &key("attention.value_length"))?.unwrap_or(head_dim);
        if head_dim == 0 || value_dim != head_dim || !head_dim.is_multiple_of(2) {
            return Err(ConfigError::Invalid(format!(
                "head dimensions {head_dim} (keys) and {value_dim} (values) must be equal and even"
            )));
        }
        let n_rot = opt_u32(g, &key("rope.dimension_count"))?.unwrap_or(head_dim);
        if n_rot == 0 || !n_rot.is_multiple_of(2) || n_rot > head_dim {
            return Err(ConfigError::Invalid(format!(
                "'{}' = {n_rot} must be even, at least 2 and at most the head dimension {head_dim}",
                key("rope.dimension_count")
            )));
        }
        let eps = g.require_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_base = opt_f32(g, &key("rope.freq_base"))?.unwrap_or(10_000.0);
        let embd = g.require_tensor("token_embd.weight")?;
        let n_vocab = u32::try_from(embd.rows())
            .map_err(|_| ConfigError::Invalid("vocabulary larger than 2^32".into()))?;
        if embd.row_len() != u64::from(n_embd) {
            return Err(ConfigError::Invalid(format!(
                "token_embd.weight rows have {} values, the embedding length is {n_embd}",
                embd.row_len()
            )));
        }
        let n_ctx_train = opt_u32(g, &key("context_length"))?.unwrap_or(4096);

        // RoPE scaling as llama.cpp reads it: the type defaults to linear; the factor is
        // `rope.scaling.factor` or the older `rope.scale_linear`; type none ignores the factor.
        let factor = match opt_f32(g, &key("rope.scaling.factor"))? {
            Some(f) => Some(f),
            None => opt_f32(g, &key("rope.scale_linear"))?,
        };
        let scaling = opt(g, &key("rope.scaling.type"), "a string", |v| {
            v.as_str().map(str::to_string)
        })?;
        let scale_of = |f: Option<f32>| -> Result<f32, ConfigError> {
            match f {
                None => Ok(1.0),
                Some(0.0) => Ok(1.0), // llama.cpp: 0 means unset
                Some(f) if f.is_finite() && f > 0.0 => Ok(1.0 / f),
                Some(f) => Err(ConfigError::Invalid(format!(
                    "RoPE scaling factor {f} must be finite and positive"
                ))),
            }
        };
        let orig_ctx = opt_u32(g, &key("rope.scaling.original_context_length"))?
            .filter(|&c| c > 0)
            .unwrap_or(n_ctx_train);
        // Unknown types are refused by the audit; here they scale nothing.
        let (rope_scale, yarn) = match scaling.as_deref() {
            None | Some("linear") => (scale_of(factor)?, None),
            Some("yarn") => (
                scale_of(factor)?,
                Some(Yarn {
                    orig_ctx,
                    beta_fast: opt_f32(g, &key("rope.scaling.yarn_beta_fast"))?.unwrap_or(32.0),
                    beta_slow: opt_f32(g, &key("rope.scaling.yarn_beta_slow"))?.unwrap_or(1.0),
                }),
            ),
            Some(_) => (1.0, None),
        };
        let rope_attn_factor = opt_f32(g, &key("rope.scaling.attn_factor"))?.unwrap_or(1.0);
        if !(rope_attn_factor.is_finite() && rope_attn_factor > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "'{}' = {rope_attn_factor} must be finite and positive",
                key("rope.scaling.attn_factor")
            )));
        }
        let rope_factors = if g.tensor("rope_freqs.weight").is_some() {
            RopeFactors::Freqs
        } else if g.tensor("rope_factors_short.weight").is_some()
            || g.tensor("rope_factors_long.weight").is_some()
        {
            RopeFactors::LongRope { orig_ctx }
        } else {
            RopeFactors::None
        };

        let gemma = arch.is_gemma();
        let window = match arch {
            Arch::Gemma3 => g.require_u32(&key("attention.sliding_window"))?,
            // llama.cpp's default for Gemma 2 files without the key.
            Arch::Gemma2 => opt_u32(g, &key("attention.sliding_window"))?.unwrap_or(4096),
            _ => 0,
        };
        let swa_period = match arch {
            Arch::Gemma2 => opt_u32(g, &key("attention.sliding_window_pattern"))?.unwrap_or(2),
            Arch::Gemma3 => opt_u32(g, &key("attention.sliding_window_pattern"))?.unwrap_or(6),
            _ => 1,
        };
        if swa_period == 0 {
            return Err(ConfigError::Invalid(
                "a sliding-window pattern of 0 layers".into(),
            ));
        }
        // Gemma's 27B models scale queries by 1/√(n_embd / n_head) (`query_pre_attn_scalar`);
        // llama.cpp recognizes them by their layer count (46 for Gemma 2, 62 for Gemma 3).
        let big_gemma = matches!((arch, n_layer), (Arch::Gemma2, 46) | (Arch::Gemma3, 62));
        let attn_scale = if big_gemma {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        let softcap = |k: &str, default: f32| -> Result<f32, ConfigError> {
            let c = opt_f32(g, &key(k))?.unwrap_or(default);
            if c.is_finite() && c >= 0.0 {
                Ok(c)
            } else {
                Err(ConfigError::Invalid(format!("'{}' = {c}", key(k))))
            }
        };
        let (attn_softcap, final_softcap) = match arch {
            Arch::Gemma2 => (
                softcap("attn_logit_softcapping", 50.0)?,
                softcap("final_logit_softcapping", 30.0)?,
            ),
            Arch::Gemma3 => (0.0, softcap("final_logit_softcapping", 0.0)?),
            _ => (0.0, 0.0),
        };
        let (rope_base_local, rope_scale_local) = match arch {
            // llama.cpp's gemma3 uses a fixed base of 10 000 and no scaling on sliding-window layers.
            Arch::Gemma3 => (
                opt_f32(g, &key("rope.freq_base_swa"))?.unwrap_or(10_000.0),
                1.0,
            ),
            Arch::Gemma2 => (
                opt_f32(g, &key("rope.freq_base_swa"))?.unwrap_or(rope_base),
                rope_scale,
            ),
            _ => (rope_base, rope_scale),
        };
        Ok(Config {
            arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            n_vocab,
            eps,
            rope_mode: if arch == Arch::Llama {
                RopeMode::Normal
            } else {
                RopeMode::Neox
            },
            n_rot,
            rope_base,
            rope_base_local,
            rope_scale,
            rope_scale_local,
            yarn,
            rope_attn_factor,
            rope_factors,
            window,
            swa_period,
            n_ctx_train,
            attn_scale,
            attn_softcap,
            final_softcap,
            embd_scale: if gemma { (n_embd as f32).sqrt() } else { 1.0 },
            tied_output: g.tensor("output.weight").is_none(),
            fused_qkv: arch == Arch::Phi3 && g.tensor("blk.0.attn_qkv.weight").is_some(),
            fused_gate_up: arch == Arch::Phi3,
        })
    }

    /// Whether layer `il` attends over a sliding window (Gemma 2: even layers; Gemma 3: five
    /// local layers, then one global).
    pub fn is_local(&self, il: u32) -> bool {
        self.window > 0 && il % self.swa_period < self.swa_period - 1
    }

    /// The RoPE of layer `il` (local or global), with the frequency factors given.
    pub fn rope(&self, local: bool, factors: Option<Arc<[f32]>>) -> Rope {
        let mode = match self.rope_mode {
            RopeMode::Normal => rope::RopeMode::Normal,
            RopeMode::Neox => rope::RopeMode::Neox,
        };
        let (base, scale) = if local {
            (self.rope_base_local, self.rope_scale_local)
        } else {
            (self.rope_base, self.rope_scale)
        };
        Rope {
            n_rot: self.n_rot,
            freq_scale: scale,
            yarn: self.yarn,
            attn_factor: self.rope_attn_factor,
            factors,
            ..Rope::new(mode, self.head_dim, base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufWriter;
    use crate::quant::GgmlType;

    fn header(arch: &str, extra: &[(&str, MetaValue)]) -> Gguf {
        let mut w = GgufWriter::new();
        w.add("general.architecture", MetaValue::String(arch.into()));
        for (k, v) in [
            ("block_count", MetaValue::U32(12)),
            ("embedding_length", MetaValue::U32(64)),
            ("feed_forward_length", MetaValue::U32(128)),
            ("attention.head_count", MetaValue::U32(4)),
            ("attention.layer_norm_rms_epsilon", MetaValue::F32(1e-6)),
        ] {
            w.add(format!("{arch}.{k}"), v);
        }
        for (k, v) in extra {
            w.add(format!("{arch}.{k}"), v.clone());
        }
        w.add_tensor(
            "token_embd.weight",
            GgmlType::F32,
            &[64, 10],
            vec![0u8; 64 * 10 * 4],
        )
        .expect("tensor");
        Gguf::parse(&w.to_bytes()).expect("parse")
    }

    #[test]
    fn gemma3_from_metadata() {
        let g = header(
            "gemma3",
            &[
                ("attention.head_count_kv", MetaValue::U32(1)),
                ("attention.key_length", MetaValue::U32(32)),
                ("attention.value_length", MetaValue::U32(32)),
                ("attention.sliding_window", MetaValue::U32(512)),
                ("rope.freq_base", MetaValue::F32(1e6)),
            ],
        );
        let c = Config::read(&g).expect("config");
        assert_eq!(
            (c.arch, c.n_head_kv, c.head_dim, c.n_vocab, c.window),
            (Arch::Gemma3, 1, 32, 10, 512)
        );
        assert_eq!(c.rope_mode, RopeMode::Neox);
        assert_eq!((c.rope_base, c.rope_base_local), (1e6, 1e4));
        assert_eq!(c.embd_scale, 8.0);
        assert!(c.tied_output);
        let local: Vec<bool> = (0..12).map(|il| c.is_local(il)).collect();
        assert_eq!(
            local,
            [true, true, true, true, true, false, true, true, true, true, true, false]
        );
    }

    #[test]
    fn llama_defaults_and_errors() {
        let c = Config::read(&header("llama", &[])).expect("config");
        assert_eq!(
            (c.n_head_kv, c.head_dim, c.rope_mode, c.window),
            (4, 16, RopeMode::Normal, 0)
        );
        assert_eq!(c.attn_scale, 0.25);
        assert!(
            matches!(Config::read(&header("mamba", &[])), Err(ConfigError::UnsupportedArch(a)) if a == "mamba")
        );
        let bad = header("llama", &[("attention.head_count_kv", MetaValue::U32(3))]);
        assert!(matches!(Config::read(&bad), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn rope_scaling_as_llama_cpp_reads_it() {
        let f =
            |extra: &[(&str, MetaValue)]| Config::read(&header("llama", extra)).expect("config");
        // No type: linear, from either key.
        let c = f(&[("rope.scaling.factor", MetaValue::F32(4.0))]);
        assert_eq!((c.rope_scale, c.yarn), (0.25, None));
        let c = f(&[("rope.scale_linear", MetaValue::F32(2.0))]);
        assert_eq!(c.rope_scale, 0.5);
        // Type none ignores the factor.
        let c = f(&[
            ("rope.scaling.type", MetaValue::String("none".into())),
            ("rope.scaling.factor", MetaValue::F32(4.0)),
        ]);
        assert_eq!(c.rope_scale, 1.0);
        // YaRN: the original context defaults to the training context.
        let c = f(&[
            ("rope.scaling.type", MetaValue::String("yarn".into())),
            ("rope.scaling.factor", MetaValue::F32(4.0)),
            ("rope.scaling.attn_factor", MetaValue::F32(1.5)),
        ]);
        assert_eq!(c.rope_scale, 0.25);
        assert_eq!(c.rope_attn_factor, 1.5);
        let y = c.yarn.expect("yarn");
        assert_eq!((y.orig_ctx, y.beta_fast, y.beta_slow), (4096, 32.0, 1.0));
        // Partial rotary; a bad one and a mistyped key are errors naming the key.
        assert_eq!(f(&[("rope.dimension_count", MetaValue::U32(8))]).n_rot, 8);
        for bad in [
            ("rope.dimension_count", MetaValue::U32(7)),
            ("rope.freq_base", MetaValue::String("1e4".into())),
            ("rope.scaling.factor", MetaValue::F32(-2.0)),
        ] {
            let e =
                Config::read(&header("llama", std::slice::from_ref(&bad))).expect_err("refused");
            assert!(
                e.to_string().contains(bad.0) || e.to_string().contains("factor"),
                "{e}"
            );
        }
    }

    #[test]
    fn gemma2_from_metadata() {
        let c = Config::read(&header("gemma2", &[])).expect("config");
        // llama.cpp's defaults: window 4096, soft-caps 50 and 30, even layers slide.
        assert_eq!(
            (c.window, c.attn_softcap, c.final_softcap),
            (4096, 50.0, 30.0)
        );
        assert_eq!((c.rope_base_local, c.embd_scale), (10_000.0, 8.0));
        let local: Vec<bool> = (0..4).map(|il| c.is_local(il)).collect();
        assert_eq!(local, [true, false, true, false]);
        assert_eq!(c.attn_scale, 0.25);
    }
}
