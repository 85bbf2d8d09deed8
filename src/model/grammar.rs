//! Structured output: a JSON schema turned into a [`TokenConstraint`] by llguidance (the
//! constrained-decoding engine llama.cpp and vLLM use). llguidance sees the vocabulary as a trie
//! of each token's bytes; at each step it gives the set of tokens that keep the output a prefix
//! of some document the schema accepts, and generation masks everything else before sampling.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use super::generate::TokenConstraint;
use super::tokenizer::Tokenizer;

/// Errors building a structured-output constraint.
#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("the tokenizer cannot drive structured output: {0}")]
    Tokenizer(String),
    #[error("the JSON schema cannot be used: {0}")]
    Schema(String),
}

/// The model's vocabulary as llguidance sees it.
struct Vocab {
    trie: TokTrie,
}

impl TokenizerEnv for Vocab {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    // Only used to tokenize text a grammar forces; generation never relies on it being the
    // model's own tokenization (`tokenize_is_canonical` is false).
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.greedy_tokenize(s)
    }

    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}

/// Everything structured output needs from one model's vocabulary; build once per model (it
/// walks the whole vocabulary: about 0.9 s for Gemma 3's 262k tokens), then make a
/// [`JsonConstraint`] per request.
pub struct Grammar {
    factory: ParserFactory,
}

impl Grammar {
    /// `n_vocab` is the width of the model's logits (ids past the tokenizer's are never allowed).
    pub fn new(tok: &Tokenizer, n_vocab: usize) -> Result<Grammar, GrammarError> {
        let eog: Vec<TokenId> = tok.eog_ids().to_vec();
        let Some(&eos) = eog.first() else {
            return Err(GrammarError::Tokenizer(
                "the model has no end-of-generation token to end a document with".into(),
            ));
        };
        // Special tokens are marked with llguidance's prefix byte so no grammar matches them;
        // a raw 0xFF byte token (never valid UTF-8, so never valid JSON) would collide with it.
        let words: Vec<Vec<u8>> = (0..n_vocab as u32)
            .map(|id| match tok.piece(id) {
                Ok(p)
                    if !tok.is_special(id) && p.first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER) =>
                {
                    p.to_vec()
                }
                _ => {
                    let mut v = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    v.extend(format!("<[{id}]>").bytes());
                    v
                }
            })
            .collect();
        let info = TokRxInfo::new(n_vocab as u32, eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eog);
        let env: toktrie::TokEnv = Arc::new(Vocab { trie });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Tokenizer(e.to_string()))?;
        factory.quiet();
        Ok(Grammar { factory })
    }

    /// A constraint for documents `schema` accepts. Unless the schema says otherwise (its
    /// `x-guidance` options), the JSON is compact: no free whitespace between tokens, so a
    /// small model cannot wander off into blank lines.
    pub fn json_schema(&self, schema: &Value) -> Result<JsonConstraint, GrammarError> {
        let mut schema = schema.clone();
        let Some(obj) = schema.as_object_mut() else {
            return Err(GrammarError::Schema(
                "a schema must be a JSON object".into(),
            ));
        };
        obj.entry("x-guidance")
            .or_insert_with(|| serde_json::json!({"whitespace_flexible": false}));
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| {
                GrammarError::Schema(e.to_string().lines().next().unwrap_or("").to_string())
            })?;
        Ok(JsonConstraint {
            matcher: Matcher::new(Ok(parser)),
            eog: self.factory.tok_env().tok_trie().eos_tokens().to_vec(),
            finished: false,
        })
    }
}

/// One request's structured-output state.
pub struct JsonConstraint {
    matcher: Matcher,
    eog: Vec<TokenId>,
    finished: bool,
}

impl TokenConstraint for JsonConstraint {
    fn mask(&mut self, allowed: &mut [u32]) -> Result<(), String> {
        // Once the document is complete the matcher stops by itself; then only the end token
        // is allowed.
        let m = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| e.to_string())?;
        for (a, b) in allowed.iter_mut().zip(m.as_slice()) {
            *a &= *b;
        }
        // Words past the mask's length (none: it covers n_vocab) would stay allowed.
        let n = m.as_slice().len();
        for a in allowed.iter_mut().skip(n) {
            *a = 0;
        }
        Ok(())
    }

    fn commit(&mut self, id: u32) -> Result<(), String> {
        if self.eog.contains(&id) {
            if !self.matcher.is_stopped() {
                self.matcher.consume_token(id).map_err(|e| e.to_string())?;
            }
            self.finished = true;
            return Ok(());
        }
        self.matcher.consume_token(id).map_err(|e| e.to_string())?;
        if self.matcher.is_stopped() {
            self.finished = true;
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}
