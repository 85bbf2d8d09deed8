//! The `tokenizers` models equivalent to llama.cpp's SPM and BPE tokenizers.

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::load::meta_err;
use super::{Result, TokenizerError};
use crate::gguf::{Gguf, MetaArray};

fn build_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Build(e.to_string())
}

/// SentencePiece as a BPE model: a merge for every split of every token into two tokens, ranked
/// by the merged token's score (highest first; ties by id), so merging pairs by rank, leftmost
/// first, is llama.cpp's score-driven bigram merging.
pub(super) fn build_spm(
    tokens: &[String],
    scores: &[f32],
    ids: Vocab,
    add_space_prefix: bool,
) -> Result<tokenizers::Tokenizer> {
    let mut order: Vec<u32> = (0..tokens.len() as u32)
        .filter(|&i| tokens[i as usize].chars().nth(1).is_some())
        .collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    let mut merges = Vec::new();
    for i in order {
        let t = tokens[i as usize].as_str();
        for (at, _) in t.char_indices().skip(1) {
            let (l, r) = t.split_at(at);
            if ids.contains_key(l) && ids.contains_key(r) {
                merges.push((l.to_owned(), r.to_owned()));
            }
        }
    }
    let bpe = BPE::builder()
        .vocab_and_merges(ids, merges)
        .byte_fallback(true)
        .build()
        .map_err(build_err)?;
    let mut norm: Vec<NormalizerWrapper> = vec![Replace::new(" ", "▁").map_err(build_err)?.into()];
    if add_space_prefix {
        norm.push(Prepend::new("▁".to_owned()).into());
    }
    let mut hf = tokenizers::Tokenizer::new(bpe);
    hf.with_normalizer(Some(NormalizerSequence::new(norm)))
        .map_err(build_err)?;
    Ok(hf)
}

/// Byte-level BPE: the GGUF's merges (those whose parts and result are tokens; llama.cpp keeps
/// the others, which can only leave untokenizable symbols), the pre-tokenizer's regexes, then
/// GPT-2's byte-to-character map.
pub(super) fn build_bpe(
    g: &Gguf,
    ids: Vocab,
    regexes: &[&str],
    ignore_merges: bool,
) -> Result<tokenizers::Tokenizer> {
    const K_MERGES: &str = "tokenizer.ggml.merges";
    let raw = g
        .get_array(K_MERGES)
        .and_then(MetaArray::as_strings)
        .ok_or_else(|| meta_err(K_MERGES, "missing, or not an array of strings"))?;
    let mut merges = Vec::with_capacity(raw.len());
    for m in raw {
        // llama.cpp splits at the first space after the first byte.
        let Some(at) = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1) else {
            continue;
        };
        let (l, r) = (&m[..at], &m[at + 1..]);
        if ids.contains_key(l)
            && ids.contains_key(r)
            && ids.contains_key(format!("{l}{r}").as_str())
        {
            merges.push((l.to_owned(), r.to_owned()));
        }
    }
    let bpe = BPE::builder()
        .vocab_and_merges(ids, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(build_err)?;
    let mut pre = Vec::with_capacity(regexes.len() + 1);
    for re in regexes {
        let split = Split::new(
            SplitPattern::Regex((*re).to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(build_err)?;
        pre.push(PreTokenizerWrapper::Split(split));
    }
    pre.push(ByteLevel::new(false, false, false).into());
    let mut hf = tokenizers::Tokenizer::new(bpe);
    hf.with_pre_tokenizer(Some(PreTokenizerSequence::new(pre)));
    Ok(hf)
}
