//! Streaming decoding and llama.cpp's clean-up of decoded text.

use super::{Result, Tokenizer};

/// Turns generated ids, one at a time, into text as soon as it is complete UTF-8: a character
/// split over byte tokens (an emoji as `<0xF0>` … `<0x80>`) comes out with its last byte.
/// Pieces are not cleaned up or stripped (llama.cpp streams `token_to_piece` the same way).
#[derive(Clone, Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    special: bool,
}

impl StreamDecoder {
    /// A decoder that renders control tokens as their text when `special` is true, and as
    /// nothing otherwise.
    pub fn new(special: bool) -> StreamDecoder {
        StreamDecoder {
            pending: Vec::new(),
            special,
        }
    }

    /// Adds a token; returns the text it completes (often empty for a byte token).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String> {
        let piece = tokenizer.piece(id)?;
        if self.special || !tokenizer.is_special(id) {
            self.pending.extend_from_slice(piece);
        }
        let mut out = String::new();
        let mut used = 0;
        while used < self.pending.len() {
            match std::str::from_utf8(&self.pending[used..]) {
                Ok(s) => {
                    out.push_str(s);
                    used = self.pending.len();
                }
                Err(e) => {
                    let good = used + e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[used..good]));
                    used = good;
                    // An incomplete sequence at the end waits for the next token.
                    let Some(bad) = e.error_len() else { break };
                    out.push(char::REPLACEMENT_CHARACTER);
                    used += bad;
                }
            }
        }
        self.pending.drain(..used);
        Ok(out)
    }

    /// Whatever is held back (an incomplete sequence at the end of generation), as U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// llama.cpp's `clean_spaces` passes: drop the space before `?!.,`; turn ` ' ` into `'`; drop
/// the space before `'s`, `'m`, `'re`, `'ve`.
pub(super) fn clean_up_spaces(text: &[u8]) -> Vec<u8> {
    let mut a: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    let mut b: Vec<u8> = Vec::with_capacity(a.len());
    let (mut i, mut prev_space) = (0, false);
    while i < a.len() {
        let x = a[i];
        if prev_space && x == b'\'' && a.get(i + 1) == Some(&b' ') {
            // Both spaces go; the one after no longer counts as a space before the next byte.
            b.pop();
            b.push(x);
            (i, prev_space) = (i + 2, false);
            continue;
        }
        b.push(x);
        (i, prev_space) = (i + 1, x == b' ');
    }
    let mut c: Vec<u8> = Vec::with_capacity(b.len());
    for (i, &x) in b.iter().enumerate() {
        if i > 0 && b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let rest = &b[i + 1..];
            if matches!(rest[0], b's' | b'm') || rest.starts_with(b"re") || rest.starts_with(b"ve")
            {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}
