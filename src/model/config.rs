//! Model configuration, read only from GGUF metadata.

use crate::gguf::{Gguf, GgufError};

/// Architectures Wisp runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, SmolLM2, Mistral, TinyLlama.
    Llama,
    Qwen2,
    /// Qwen 3: QK-norm.
    Qwen3,
    /// Gemma 3: QK-norm, pre+post norms, GeGLU, embedding scale, sliding-window layers, tied output.
    Gemma3,
}

/// How RoPE pairs dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Pairs (2i, 2i + 1): Llama.
    Normal,
    /// Pairs (i, i + n_rot / 2): Qwen, Gemma.
    Neox,
}

/// Errors in a model's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("architecture '{0}' is not supported (supported: llama, qwen2, qwen3, gemma3)")]
    UnsupportedArch(String),
    #[error("the file has no general.architecture")]
    NoArch,
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("inconsistent configuration: {0}")]
    Invalid(String),
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
    /// RoPE base of global-attention layers.
    pub rope_base: f32,
    /// RoPE base of sliding-window layers (Gemma 3: 10 000).
    pub rope_base_local: f32,
    /// Sliding window in positions (0: none).
    pub window: u32,
    /// Context length the model was trained for.
    pub n_ctx_train: u32,
    /// Multiplier of the attention scores (1/√head_dim unless the architecture says otherwise).
    pub attn_scale: f32,
    /// Multiplier of the token embeddings (Gemma: √n_embd).
    pub embd_scale: f32,
    /// The output projection is the token embedding (no `output.weight`).
    pub tied_output: bool,
}

impl Config {
    /// Reads the configuration of a supported architecture from `g`.
    pub fn from_gguf(g: &Gguf) -> Result<Config, ConfigError> {
        let name = g.architecture().ok_or(ConfigError::NoArch)?;
        let arch = match name {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma3" => Arch::Gemma3,
            other => return Err(ConfigError::UnsupportedArch(other.to_string())),
        };
        let key = |k: &str| format!("{name}.{k}");
        let n_layer = g.require_u32(&key("block_count"))?;
        let n_embd = g.require_u32(&key("embedding_length"))?;
        let n_ff = g.require_u32(&key("feed_forward_length"))?;
        let n_head = g.require_u32(&key("attention.head_count"))?;
        let n_head_kv = g.get_u32(&key("attention.head_count_kv")).unwrap_or(n_head);
        if n_head == 0 || n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
            return Err(ConfigError::Invalid(format!(
                "{n_head} attention heads are not a multiple of {n_head_kv} key/value heads"
            )));
        }
        let head_dim = g
            .get_u32(&key("attention.key_length"))
            .unwrap_or(n_embd / n_head);
        let value_dim = g
            .get_u32(&key("attention.value_length"))
            .unwrap_or(head_dim);
        if head_dim == 0 || value_dim != head_dim || !head_dim.is_multiple_of(2) {
            return Err(ConfigError::Invalid(format!(
                "head dimensions {head_dim} (keys) and {value_dim} (values) must be equal and even"
            )));
        }
        let eps = g.require_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_base = g.get_f32(&key("rope.freq_base")).unwrap_or(10_000.0);
        let embd = g.require_tensor("token_embd.weight")?;
        let n_vocab = u32::try_from(embd.rows())
            .map_err(|_| ConfigError::Invalid("vocabulary larger than 2^32".into()))?;
        if embd.row_len() != u64::from(n_embd) {
            return Err(ConfigError::Invalid(format!(
                "token_embd.weight rows have {} values, the embedding length is {n_embd}",
                embd.row_len()
            )));
        }
        let gemma = arch == Arch::Gemma3;
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
            rope_base,
            // llama.cpp's gemma3 uses a fixed base of 10 000 on sliding-window layers.
            rope_base_local: if gemma { 10_000.0 } else { rope_base },
            window: if gemma {
                g.get_u32(&key("attention.sliding_window")).unwrap_or(0)
            } else {
                0
            },
            n_ctx_train: g.get_u32(&key("context_length")).unwrap_or(4096),
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            embd_scale: if gemma { (n_embd as f32).sqrt() } else { 1.0 },
            tied_output: g.tensor("output.weight").is_none(),
        })
    }

    /// Whether layer `il` attends over a sliding window (Gemma 3: five local layers, then one global).
    pub fn is_local(&self, il: u32) -> bool {
        self.arch == Arch::Gemma3 && self.window > 0 && !(il + 1).is_multiple_of(6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgufWriter, MetaValue};
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
        let c = Config::from_gguf(&g).expect("config");
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
        let c = Config::from_gguf(&header("llama", &[])).expect("config");
        assert_eq!(
            (c.n_head_kv, c.head_dim, c.rope_mode, c.window),
            (4, 16, RopeMode::Normal, 0)
        );
        assert_eq!(c.attn_scale, 0.25);
        assert!(
            matches!(Config::from_gguf(&header("mamba", &[])), Err(ConfigError::UnsupportedArch(a)) if a == "mamba")
        );
        let bad = header("llama", &[("attention.head_count_kv", MetaValue::U32(3))]);
        assert!(matches!(
            Config::from_gguf(&bad),
            Err(ConfigError::Invalid(_))
        ));
    }
}
