//! Reading `tokenizer.*` metadata with llama.cpp's defaults and rules.

use tokenizers::models::bpe::Vocab;

use super::{hf, Result, TokenType, Tokenizer, TokenizerError, VocabKind};
use crate::gguf::{Gguf, MetaArray};

/// Texts llama.cpp recognises as end of turn, end of message, FIM repo/pad/sep and end of
/// generation, in its order. A token found this way is treated as a control token.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

// llama.cpp's pre-tokenizer regexes, applied one after the other, each splitting the pieces of
// the previous one (matches and the text between them both kept).
const RE_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const RE_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const RE_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Regexes, `clean_spaces`, `ignore_merges` and the `add_bos` default of a `tokenizer.ggml.pre`
/// (llama.cpp's `llama_vocab::impl::load` and `llm_tokenizer_bpe`).
fn bpe_pre(pre: &str) -> Option<(Vec<&'static str>, bool, bool, bool)> {
    Some(match pre {
        "" | "default" => (
            vec![
                r"[\p{P}\$\+<=>\^~\|]+",
                RE_GPT2,
                r"\p{N}+",
                r"[0-9][0-9][0-9]",
            ],
            true,
            false,
            false,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (vec![RE_LLAMA3], true, true, true),
        "dbrx" | "smaug-bpe" => (vec![RE_LLAMA3], true, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => (vec![RE_QWEN2], false, false, false),
        "stablelm2" | "megrez" => (vec![RE_QWEN2], true, false, false),
        "smollm" | "command-r" => (vec![r"\p{N}", RE_GPT2], false, false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            (vec![r"\p{N}", RE_GPT2], true, false, false)
        }
        "gpt-2" | "phi-2" | "mpt" | "olmo" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
        | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" => {
            (vec![RE_GPT2], true, false, false)
        }
        "trillion" | "granite-docling" => (vec![RE_GPT2], false, false, false),
        _ => return None,
    })
}

pub(super) fn meta_err(key: &str, problem: impl Into<String>) -> TokenizerError {
    TokenizerError::Metadata {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// An optional bool key; present with another type is an error (as in llama.cpp).
fn opt_bool(g: &Gguf, key: &str) -> Result<Option<bool>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| meta_err(key, format!("expected a bool, found {}", v.type_name()))),
    }
}

/// Reads the vocabulary and llama.cpp's rules for it (`llama_vocab::impl::load`).
pub(super) fn load(g: &Gguf) -> Result<Tokenizer> {
    const K_TOKENS: &str = "tokenizer.ggml.tokens";
    let model = g
        .get_str("tokenizer.ggml.model")
        .ok_or_else(|| meta_err("tokenizer.ggml.model", "missing, or not a string"))?;
    let pre = g.get_str("tokenizer.ggml.pre").unwrap_or("");
    let kind = match model {
        "llama" => VocabKind::Spm,
        "gpt2" => VocabKind::Bpe,
        other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
    };
    let raw = g
        .get_array(K_TOKENS)
        .and_then(MetaArray::as_strings)
        .ok_or_else(|| meta_err(K_TOKENS, "missing, or not an array of strings"))?;
    let n = raw.len();
    if n == 0 || n > u32::MAX as usize {
        return Err(meta_err(K_TOKENS, format!("{n} tokens")));
    }
    // llama.cpp renames empty tokens and rejects duplicates.
    let tokens: Vec<String> = raw
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                t.clone()
            }
        })
        .collect();
    // The text-to-id map, also the `tokenizers` BPE model's vocabulary.
    let mut ids = Vocab::with_capacity(n);
    for (i, t) in tokens.iter().enumerate() {
        if let Some(prev) = ids.insert(t.clone(), i as u32) {
            return Err(meta_err(
                K_TOKENS,
                format!("duplicate token {t:?} (ids {prev} and {i})"),
            ));
        }
    }
    let scores: Vec<f32> = match g.get_array("tokenizer.ggml.scores") {
        None => vec![0.0; n],
        Some(MetaArray::F32(s)) if s.len() >= n => s[..n].to_vec(),
        Some(MetaArray::I32(s)) if s.len() >= n => s[..n].iter().map(|&v| v as f32).collect(),
        Some(_) => {
            return Err(meta_err(
                "tokenizer.ggml.scores",
                "not f32/i32, or too short",
            ))
        }
    };
    let mut types: Vec<TokenType> = match g.get_array("tokenizer.ggml.token_type") {
        None => vec![TokenType::Normal; n],
        Some(MetaArray::I32(t)) if t.len() >= n => {
            t[..n].iter().map(|&v| TokenType::from_gguf(v)).collect()
        }
        Some(_) => {
            return Err(meta_err(
                "tokenizer.ggml.token_type",
                "not i32, or too short",
            ))
        }
    };

    // Defaults by vocabulary type, then what the metadata says.
    let (mut bos, mut eos, mut add_bos, mut add_space_prefix, mut clean_spaces) = match kind {
        VocabKind::Spm => (Some(1), Some(2), true, true, false),
        VocabKind::Bpe => (Some(11), Some(11), false, false, true),
    };
    let mut regexes = Vec::new();
    let mut ignore_merges = false;
    if kind == VocabKind::Bpe {
        let (r, clean, ignore, bos_default) =
            bpe_pre(pre).ok_or_else(|| TokenizerError::UnsupportedPre(pre.to_owned()))?;
        (regexes, clean_spaces, ignore_merges, add_bos) = (r, clean, ignore, bos_default);
    }
    if let Some(v) = opt_bool(g, "tokenizer.ggml.add_space_prefix")? {
        add_space_prefix = v;
    }
    let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
    // A key with an id beyond the vocabulary keeps the default (llama.cpp warns).
    let id_key =
        |key: &str, default: Option<u32>| in_range(g.get_u32(key)).or_else(|| in_range(default));
    bos = id_key("tokenizer.ggml.bos_token_id", bos);
    eos = id_key("tokenizer.ggml.eos_token_id", eos);
    if let Some(v) = opt_bool(g, "tokenizer.ggml.add_bos_token")? {
        add_bos = v;
    }
    let add_eos = opt_bool(g, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    if add_bos && bos.is_none() {
        return Err(meta_err(
            "tokenizer.ggml.add_bos_token",
            "true, but no BOS token",
        ));
    }
    if add_eos && eos.is_none() {
        return Err(meta_err(
            "tokenizer.ggml.add_eos_token",
            "true, but no EOS token",
        ));
    }

    // A token found by its text (not by a key) becomes a control token, as in llama.cpp.
    let mut find = |key: &str, texts: &[&str]| -> Option<u32> {
        if let Some(id) = in_range(g.get_u32(key)) {
            return Some(id);
        }
        let id = texts.iter().find_map(|&t| ids.get(t).copied())?;
        types[id as usize] = TokenType::Control;
        Some(id)
    };
    for (key, texts) in [
        ("tokenizer.ggml.fim_pre_token_id", FIM_PRE_TEXTS),
        ("tokenizer.ggml.fim_suf_token_id", FIM_SUF_TEXTS),
        ("tokenizer.ggml.fim_mid_token_id", FIM_MID_TEXTS),
    ] {
        find(key, texts);
    }
    let eot = find("tokenizer.ggml.eot_token_id", EOT_TEXTS);
    let eom = find("tokenizer.ggml.eom_token_id", EOM_TEXTS);
    let mut eog: Vec<u32> = [
        find("tokenizer.ggml.fim_pad_token_id", FIM_PAD_TEXTS),
        find("tokenizer.ggml.fim_rep_token_id", FIM_REP_TEXTS),
        find("tokenizer.ggml.fim_sep_token_id", FIM_SEP_TEXTS),
    ]
    .into_iter()
    .flatten()
    .collect();
    for t in EOG_TEXTS {
        if let Some(&id) = ids.get(*t) {
            types[id as usize] = TokenType::Control;
            eog.push(id);
        }
    }
    eog.extend([eos, eot, eom].into_iter().flatten());
    // llama.cpp always renders these gpt-oss tokens.
    for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(&id) = ids.get(t) {
            types[id as usize] = TokenType::UserDefined;
        }
    }
    eog.sort_unstable();
    eog.dedup();

    let mut specials: Vec<u32> = (0..n as u32)
        .filter(|&i| {
            matches!(
                types[i as usize],
                TokenType::Control | TokenType::UserDefined | TokenType::Unknown
            )
        })
        .collect();
    specials.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].len()));
    let rstrip = rstrip_tokens(g, &specials, &ids);

    let (pieces, piece_ends) = build_pieces(kind, &tokens, &types);
    let hf = match kind {
        VocabKind::Spm => hf::build_spm(&tokens, &scores, ids, add_space_prefix)?,
        VocabKind::Bpe => hf::build_bpe(g, ids, &regexes, ignore_merges)?,
    };
    Ok(Tokenizer {
        kind,
        hf,
        tokens,
        types,
        pieces,
        piece_ends,
        specials,
        rstrip,
        bos,
        eos,
        eot,
        eom,
        eog,
        add_bos,
        add_eos,
        add_space_prefix,
        clean_spaces,
        chat_template: g.get_str("tokenizer.chat_template").map(str::to_owned),
    })
}

/// The special tokens that strip whitespace after them, by llama.cpp's per-model rules
/// (`llama-vocab.cpp`, "per token attributes"; the GGUF has no such field): a model whose
/// `general.name` contains "phi-3" or "phi3" (any case) strips after every special token and
/// after `</s>`, except `<unk>`, `<s>` and `<|endoftext|>`. Sorted.
fn rstrip_tokens(g: &Gguf, specials: &[u32], ids: &Vocab) -> Vec<u32> {
    let name = g.get_str("general.name").unwrap_or_default().to_lowercase();
    if !(name.contains("phi-3") || name.contains("phi3")) {
        return Vec::new();
    }
    let mut out: Vec<u32> = specials.to_vec();
    out.extend(ids.get("</s>"));
    let keep: Vec<u32> = ["<unk>", "<s>", "<|endoftext|>"]
        .iter()
        .filter_map(|t| ids.get(*t).copied())
        .collect();
    out.retain(|id| !keep.contains(id));
    out.sort_unstable();
    out.dedup();
    out
}

/// llama.cpp's `token_to_piece` (with `special`) for every token.
fn build_pieces(kind: VocabKind, tokens: &[String], types: &[TokenType]) -> (Vec<u8>, Vec<usize>) {
    let unbyte = gpt2_byte_decoder();
    let mut pieces = Vec::with_capacity(tokens.iter().map(String::len).sum());
    let mut ends = Vec::with_capacity(tokens.len());
    for (t, ty) in tokens.iter().zip(types) {
        match ty {
            TokenType::Control | TokenType::Unknown | TokenType::UserDefined => {
                pieces.extend_from_slice(t.as_bytes())
            }
            TokenType::Normal if kind == VocabKind::Spm => {
                pieces.extend_from_slice(t.replace('▁', " ").as_bytes())
            }
            TokenType::Normal => {
                // Byte-level characters stand for bytes; any other character is kept as is.
                for c in t.chars() {
                    match unbyte.get(c as usize).copied().flatten() {
                        Some(b) => pieces.push(b),
                        None => pieces.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
            }
            TokenType::Byte => match parse_byte_token(t) {
                Some(b) => pieces.push(b),
                None => pieces.extend_from_slice(t.as_bytes()),
            },
            TokenType::Unused | TokenType::Undefined => {}
        }
        ends.push(pieces.len());
    }
    (pieces, ends)
}

/// `<0xF0>` → 0xF0.
fn parse_byte_token(t: &str) -> Option<u8> {
    let hex = t.strip_prefix("<0x")?.strip_suffix('>')?;
    let valid = hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u8::from_str_radix(hex, 16).ok())?
}

/// GPT-2's byte-to-character map, inverted and indexed by code point: printable Latin-1 bytes
/// stand for themselves, the other 68 bytes for U+0100, U+0101, … in byte order.
fn gpt2_byte_decoder() -> Vec<Option<u8>> {
    let mut table = vec![None; 256 + 68];
    let mut next = 256;
    for b in 0..=255u8 {
        if matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF) {
            table[b as usize] = Some(b);
        } else {
            table[next] = Some(b);
            next += 1;
        }
    }
    table
}
