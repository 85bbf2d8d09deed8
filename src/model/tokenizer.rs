//! The tokenizer, built from a GGUF's vocabulary, tokenizing exactly as llama.cpp does.
//!
//! Two vocabulary types, as `tokenizer.ggml.model` names them:
//! - `llama`: SentencePiece (SPM). llama.cpp merges adjacent symbols (UTF-8 characters to begin
//!   with) greedily, the pair whose concatenation is the vocabulary token with the highest score
//!   first, leftmost first among equal scores, over a whole text fragment (no pre-splitting); a
//!   final symbol that is no token becomes its `<0xXX>` byte tokens. Spaces become `▁` (U+2581)
//!   and, when `tokenizer.ggml.add_space_prefix` is true (the SPM default; Gemma 3 sets it false),
//!   every text fragment gets a leading `▁`. That is a Hugging Face BPE model whose merges are all
//!   the (left, right) splits of every token, ranked by the token's score, with byte fallback.
//! - `gpt2`: byte-level BPE with `tokenizer.ggml.merges`, after the pre-tokenizer regexes that
//!   `tokenizer.ggml.pre` names (llama.cpp's tables for `smollm`, `llama-bpe`, `qwen2`, …).
//!
//! Special tokens: before either model runs, the text is cut at occurrences of special tokens,
//! the longest token text first (llama.cpp's `tokenizer_st_partition`). User-defined tokens
//! (type 4) are always cut out; control and unknown tokens (types 3, 2) only with
//! `parse_special`, which [`Tokenizer::encode`] sets, as llama.cpp's tools do for prompts.
//!
//! Decoding follows llama.cpp's `token_to_piece`/`detokenize`: byte tokens give their byte,
//! `▁` gives a space (SPM), byte-level characters give their byte (BPE), control tokens give
//! their text only when asked to. [`StreamDecoder`] holds back incomplete UTF-8 for streaming.

use thiserror::Error;

use crate::gguf::Gguf;

mod decode;
mod hf;
mod load;

pub use decode::StreamDecoder;

/// Why a tokenizer could not be built, or a text encoded, or ids decoded.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// A tokenizer key is missing, has the wrong type or an inconsistent value.
    #[error("tokenizer metadata '{key}': {problem}")]
    Metadata {
        /// The GGUF key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `tokenizer.ggml.model` names a vocabulary type Wisp does not implement.
    #[error("unsupported tokenizer model '{0}' (supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE))")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer Wisp does not implement.
    #[error("unsupported pre-tokenizer '{0}'")]
    UnsupportedPre(String),
    /// The `tokenizers` crate refused the model built from the vocabulary.
    #[error("building the tokenizer: {0}")]
    Build(String),
    /// The `tokenizers` crate failed on a text.
    #[error("encoding: {0}")]
    Encode(String),
    /// A token id is not in the vocabulary.
    #[error("token id {id} is out of range (vocabulary of {n_vocab})")]
    BadId {
        /// The id.
        id: u32,
        /// The vocabulary size.
        n_vocab: usize,
    },
}

type Result<T> = std::result::Result<T, TokenizerError>;

/// A token's type, as `tokenizer.ggml.token_type` stores it (llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// 0, or a value llama.cpp does not know.
    Undefined,
    /// 1: ordinary text.
    Normal,
    /// 2: the unknown token.
    Unknown,
    /// 3: control (BOS, EOS, turn markers): matched in text only with `parse_special`.
    Control,
    /// 4: user-defined: always matched in text as a whole token.
    UserDefined,
    /// 5: unused: decodes to nothing.
    Unused,
    /// 6: a byte-fallback token `<0xXX>`.
    Byte,
}

impl TokenType {
    fn from_gguf(v: i32) -> TokenType {
        match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }
}

/// The vocabulary type: `tokenizer.ggml.model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `llama`: SentencePiece with scores and byte fallback.
    Spm,
    /// `gpt2`: byte-level BPE with merges.
    Bpe,
}

/// A tokenizer built from a GGUF's `tokenizer.*` metadata. See the [module docs](self).
pub struct Tokenizer {
    kind: VocabKind,
    hf: tokenizers::Tokenizer,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    /// What each token decodes to (llama.cpp's piece with `special` = true), concatenated;
    /// token `i` is `pieces[piece_ends[i - 1]..piece_ends[i]]`.
    pieces: Vec<u8>,
    piece_ends: Vec<usize>,
    /// Control, user-defined and unknown tokens, longest text first: cut out of text before encoding.
    specials: Vec<u32>,
    /// Special tokens that strip the whitespace after them when cut out of text (llama.cpp's
    /// `LLAMA_TOKEN_ATTR_RSTRIP`), sorted.
    rstrip: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.tokens.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eog", &self.eog)
            .field("add_bos", &self.add_bos)
            .field("add_space_prefix", &self.add_space_prefix)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata, with llama.cpp's defaults for what
    /// is missing. Gemma 3's 262k-token vocabulary takes about 0.6 s natively.
    pub fn from_gguf(g: &Gguf) -> Result<Tokenizer> {
        load::load(g)
    }

    /// Encodes a prompt as llama.cpp does with `parse_special` = true: special-token texts in
    /// `text` (`<start_of_turn>`, `<|im_start|>`) become their ids. With `add_special`, adds BOS
    /// if the model asks for it (`tokenizer.ggml.add_bos_token`; default true for SPM, false for
    /// most BPE) and EOS if it asks for that (`add_eos_token`, default false).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        self.encode_with(text, add_special, true)
    }

    /// [`encode`](Self::encode) with llama.cpp's `parse_special` explicit: when false, control
    /// tokens in `text` are tokenized as plain text (user-defined tokens are still matched).
    pub fn encode_with(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(s) => {
                    let enc = self
                        .hf
                        .encode_fast(s, false)
                        .map_err(|e| TokenizerError::Encode(e.to_string()))?;
                    out.extend_from_slice(enc.get_ids());
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// Cuts `text` at occurrences of special tokens, longest token text first, each token over
    /// every remaining text fragment, left to right (llama.cpp's `tokenizer_st_partition`).
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut frags = vec![Fragment::Text(text)];
        for &id in &self.specials {
            if !parse_special && self.is_special(id) {
                continue;
            }
            let pat = self.tokens[id as usize].as_str();
            if pat.is_empty() {
                continue;
            }
            let hit = |f: &Fragment| matches!(f, Fragment::Text(s) if s.contains(pat));
            if !frags.iter().any(hit) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Text(s) = f else {
                    next.push(f);
                    continue;
                };
                let strip = self.rstrip.binary_search(&id).is_ok();
                let mut last = 0;
                while let Some(rel) = s[last..].find(pat) {
                    let at = last + rel;
                    if at > last {
                        next.push(Fragment::Text(&s[last..at]));
                    }
                    next.push(Fragment::Token(id));
                    last = at + pat.len();
                    if strip {
                        // C's isspace, as llama.cpp strips.
                        let ws = s[last..]
                            .bytes()
                            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
                            .count();
                        last += ws;
                    }
                }
                if last < s.len() {
                    next.push(Fragment::Text(&s[last..]));
                }
            }
            frags = next;
        }
        frags
    }

    /// Decodes ids to text as llama.cpp's `detokenize` does with `unparse_special`: control
    /// tokens give their text, so `decode(encode(s, false)) == s` (where the model adds no space
    /// prefix, or `s` has no special tokens). Invalid UTF-8 (a lone byte token) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_with(ids, true)
    }

    /// [`decode`](Self::decode), rendering control and unknown tokens only when `special`.
    /// Like llama.cpp: one leading space of the first piece is dropped when the model adds a
    /// space prefix, and models with `clean_spaces` (GPT-2 style) get " ." → "." and the like.
    pub fn decode_with(&self, ids: &[u32], special: bool) -> Result<String> {
        let mut out = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let piece = self.piece(id)?;
            if !special && self.is_special(id) {
                continue;
            }
            let piece = match (i, self.add_space_prefix) {
                (0, true) => piece.strip_prefix(b" ").unwrap_or(piece),
                _ => piece,
            };
            out.extend_from_slice(piece);
        }
        if self.clean_spaces {
            out = decode::clean_up_spaces(&out);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The bytes token `id` decodes to (llama.cpp's `token_to_piece` with `special` = true):
    /// possibly an incomplete UTF-8 sequence, for byte tokens.
    pub fn piece(&self, id: u32) -> Result<&[u8]> {
        let i = self.check(id)?;
        let start = if i == 0 { 0 } else { self.piece_ends[i - 1] };
        Ok(&self.pieces[start..self.piece_ends[i]])
    }

    /// The token's string as the vocabulary stores it (`▁world`, `Ġworld`, `<0xF0>`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of a vocabulary string, if it is one.
    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.hf.token_to_id(text)
    }

    /// The token's type (after llama.cpp's promotion of end-of-turn texts to control tokens).
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// True for control and unknown tokens: those `parse_special` governs and that decode to
    /// nothing unless asked to.
    pub fn is_special(&self, id: u32) -> bool {
        matches!(
            self.token_type(id),
            Some(TokenType::Control | TokenType::Unknown)
        )
    }

    /// True for tokens that end generation: EOS, EOT, EOM and llama.cpp's list of end texts.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// Every end-of-generation id, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Beginning of sequence.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End of sequence.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// End of turn: `tokenizer.ggml.eot_token_id`, or found by its text (`<end_of_turn>`, `<|im_end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }

    /// End of message: `tokenizer.ggml.eom_token_id`, or `<|eom_id|>`.
    pub fn eom(&self) -> Option<u32> {
        self.eom
    }

    /// Whether [`encode`](Self::encode) with `add_special` adds BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether every text fragment gets a leading space (`tokenizer.ggml.add_space_prefix`).
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// The Jinja chat template, `tokenizer.chat_template`.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// SentencePiece or byte-level BPE.
    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    fn check(&self, id: u32) -> Result<usize> {
        match (id as usize) < self.tokens.len() {
            true => Ok(id as usize),
            false => Err(TokenizerError::BadId {
                id,
                n_vocab: self.tokens.len(),
            }),
        }
    }
}

enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}
