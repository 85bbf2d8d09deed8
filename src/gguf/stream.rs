//! Incremental parsing for the browser: feed downloaded chunks, get the [`Gguf`] as soon as
//! the header is complete. Only header bytes are buffered, never tensor data.
//!
//! A resumable [`Scanner`] walks the header's structure token by token (a length, a string,
//! an array header, a run of fixed-size elements) and, when a token is incomplete, records
//! exactly how many bytes it needs. Bytes are appended only up to that point, so every byte
//! is scanned once whatever the chunk sizes (1-byte chunks included) and the buffer never
//! holds a byte past the header. When the scanner reaches the end of the tensor infos the
//! buffer is parsed once by [`Gguf::parse_header`].

use super::parse::{check_array_header, check_counts, check_magic, check_version};
use super::tensor::MAX_DIMS;
use super::value::ValueType;
use super::{Gguf, GgufError, MAX_STRING_LEN};

/// Default cap on the header bytes a [`StreamParser`] buffers (256 MiB; the default model's
/// header, with a 262,144-token vocabulary, is about 6 MB).
pub const DEFAULT_MAX_HEADER_LEN: u64 = 1 << 28;

/// Result of one scanner run.
enum Scan {
    /// The header needs at least this many bytes in total before the scan can go on.
    Need(u64),
    /// The header (magic to last tensor info) is complete and this long.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Magic,
    Version,
    Counts,
    Key,
    Value,
    TensorInfo,
    Done,
}

/// Values still to scan at one nesting level: `left` elements of type `elem`.
#[derive(Debug)]
struct Frame {
    elem: ValueType,
    left: u64,
}

/// Resumable walk over the header's structure. It checks what bounds the bytes it waits for
/// (counts, lengths, nesting, dimension counts, type ids); everything else is left to the
/// final parse, which also re-derives any error the scanner finds (see `StreamParser::fail`).
#[derive(Debug)]
struct Scanner {
    pos: usize,
    step: Step,
    kvs_left: u64,
    tensors_left: u64,
    kv_index: u64,
    tensor_index: u64,
    /// The current key (lossy UTF-8), for error messages.
    key: String,
    frames: Vec<Frame>,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            pos: 0,
            step: Step::Magic,
            kvs_left: 0,
            tensors_left: 0,
            kv_index: 0,
            tensor_index: 0,
            key: String::new(),
            frames: Vec::new(),
        }
    }

    /// Scans as far as `buf` allows.
    fn run(&mut self, buf: &[u8]) -> Result<Scan, GgufError> {
        // `peek!(n)`: the `n` bytes at `pos`, or return how much is needed.
        macro_rules! peek {
            ($n:expr) => {{
                let n: u64 = $n;
                match usize::try_from(n)
                    .ok()
                    .and_then(|n| buf.get(self.pos..self.pos.checked_add(n)?))
                {
                    Some(bytes) => bytes,
                    None => return Ok(Scan::Need((self.pos as u64).saturating_add(n))),
                }
            }};
        }
        loop {
            match self.step {
                Step::Magic => {
                    check_magic(array(peek!(4), 0))?;
                    self.pos += 4;
                    self.step = Step::Version;
                }
                Step::Version => {
                    check_version(u32::from_le_bytes(array(peek!(4), 0)))?;
                    self.pos += 4;
                    self.step = Step::Counts;
                }
                Step::Counts => {
                    peek!(8);
                    let b = peek!(16);
                    let (n_tensors, n_kvs) = (u64_at(b, 0), u64_at(b, 8));
                    check_counts(n_tensors, n_kvs)?;
                    self.tensors_left = n_tensors;
                    self.kvs_left = n_kvs;
                    self.pos += 16;
                    self.step = Step::Key;
                }
                Step::Key if self.kvs_left == 0 => self.step = Step::TensorInfo,
                Step::Key => {
                    let len =
                        self.string_len(peek!(8), || format!("metadata key #{}", self.kv_index))?;
                    peek!(8 + len);
                    let b = peek!(8 + len + 4);
                    let key_bytes = &b[8..b.len() - 4];
                    self.key = String::from_utf8_lossy(key_bytes).into_owned();
                    let id = u32::from_le_bytes(array(b, b.len() - 4));
                    let Some(ty) = ValueType::from_u32(id) else {
                        return Err(GgufError::UnknownValueType {
                            key: self.key.clone(),
                            id,
                        });
                    };
                    self.pos += b.len();
                    self.frames.push(Frame { elem: ty, left: 1 });
                    self.step = Step::Value;
                }
                Step::Value => {
                    let level = self.frames.len() as u32;
                    let Some(frame) = self.frames.last() else {
                        self.kvs_left -= 1;
                        self.kv_index += 1;
                        self.step = Step::Key;
                        continue;
                    };
                    if frame.left == 0 {
                        self.frames.pop();
                        continue;
                    }
                    let elem = frame.elem;
                    let mut child = None;
                    let consumed = match elem {
                        ValueType::String => {
                            let key = &self.key;
                            let len = self.string_len(peek!(8), || {
                                format!("value of metadata key `{key}`")
                            })?;
                            peek!(8 + len).len()
                        }
                        ValueType::Array => {
                            peek!(4);
                            let b = peek!(12);
                            let (id, len) = (u32::from_le_bytes(array(b, 0)), u64_at(b, 4));
                            let elem = check_array_header(&self.key, level, id, len)?;
                            match elem.fixed_size() {
                                // len <= MAX_ARRAY_LEN, size <= 8: no overflow.
                                Some(size) => peek!(12 + len * size).len(),
                                None => {
                                    child = Some(Frame { elem, left: len });
                                    12
                                }
                            }
                        }
                        fixed => peek!(fixed.min_size()).len(),
                    };
                    self.pos += consumed;
                    if let Some(frame) = self.frames.last_mut() {
                        frame.left -= 1;
                    }
                    self.frames.extend(child);
                }
                Step::TensorInfo if self.tensors_left == 0 => self.step = Step::Done,
                Step::TensorInfo => {
                    let len = self.string_len(peek!(8), || {
                        format!("name of tensor #{}", self.tensor_index)
                    })?;
                    peek!(8 + len);
                    let b = peek!(8 + len + 4);
                    let n_dims = u32::from_le_bytes(array(b, b.len() - 4));
                    if n_dims == 0 || n_dims > MAX_DIMS {
                        let name = String::from_utf8_lossy(&b[8..b.len() - 4]).into_owned();
                        return Err(GgufError::BadDimCount {
                            tensor: name,
                            n_dims,
                        });
                    }
                    // Then dims, type and offset, asking for them one field at a time as the
                    // parser reads them, so that truncation errors agree to the byte.
                    let dims_end = 8 + len + 4 + 8 * u64::from(n_dims);
                    for end in (8 + len + 12..=dims_end).step_by(8) {
                        peek!(end);
                    }
                    peek!(dims_end + 4);
                    self.pos += peek!(dims_end + 4 + 8).len();
                    self.tensors_left -= 1;
                    self.tensor_index += 1;
                }
                Step::Done => return Ok(Scan::Done),
            }
        }
    }

    /// Reads a string length from its 8 bytes and checks it against [`MAX_STRING_LEN`].
    fn string_len(&self, b: &[u8], context: impl Fn() -> String) -> Result<u64, GgufError> {
        let len = u64_at(b, 0);
        if len > MAX_STRING_LEN {
            return Err(GgufError::StringTooLong {
                context: context(),
                len,
                max: MAX_STRING_LEN,
            });
        }
        Ok(len)
    }
}

/// Four bytes at `at` of a slice the scanner has already bounds-checked.
fn array(b: &[u8], at: usize) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    a
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[derive(Debug)]
enum State {
    Scanning,
    Complete,
    Failed(GgufError),
}

/// Incremental GGUF header parser: feed it the file's bytes in order, in chunks of any size.
///
/// ```
/// # use wisp::gguf::{GgufWriter, StreamParser};
/// let file = GgufWriter::new().to_bytes();
/// let mut parser = StreamParser::new().with_file_len(file.len() as u64);
/// let mut header = None;
/// for chunk in file.chunks(3) {
///     if let Some(gguf) = parser.feed(chunk)? {
///         header = Some(gguf);
///     }
/// }
/// assert_eq!(header.unwrap().tensors.len(), 0);
/// # Ok::<(), wisp::gguf::GgufError>(())
/// ```
#[derive(Debug)]
pub struct StreamParser {
    /// Header bytes received so far; never more than the header.
    buf: Vec<u8>,
    fed: u64,
    file_len: Option<u64>,
    max_header_len: u64,
    needed: u64,
    scanner: Scanner,
    state: State,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser for a file of unknown length.
    pub fn new() -> StreamParser {
        StreamParser {
            buf: Vec::new(),
            fed: 0,
            file_len: None,
            max_header_len: DEFAULT_MAX_HEADER_LEN,
            needed: 4,
            scanner: Scanner::new(),
            state: State::Scanning,
        }
    }

    /// Declares the file's total length (e.g. from `Content-Length`): a header that would
    /// need more fails at once with [`GgufError::Truncated`], and the parsed header is checked
    /// for tensor data beyond the end, as [`Gguf::parse`] does.
    pub fn with_file_len(mut self, len: u64) -> StreamParser {
        self.file_len = Some(len);
        self
    }

    /// Sets the most header bytes to buffer ([`DEFAULT_MAX_HEADER_LEN`] by default); a header
    /// needing more fails with [`GgufError::HeaderTooLarge`].
    pub fn with_max_header_len(mut self, max: u64) -> StreamParser {
        self.max_header_len = max;
        self
    }

    /// Feeds the next chunk of the file. Returns `Some` exactly once, from the call that
    /// completes the header; bytes after the header (tensor data) are counted, not kept.
    /// After an error every call returns that error again.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<Gguf>, GgufError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Complete => {
                self.fed = self.fed.saturating_add(chunk.len() as u64);
                return Ok(None);
            }
            State::Scanning => {}
        }
        self.fed = self.fed.saturating_add(chunk.len() as u64);
        let mut rest = chunk;
        loop {
            match self.scanner.run(&self.buf) {
                Err(e) => return Err(self.fail(e)),
                Ok(Scan::Done) => {
                    return match Gguf::parse_header(&self.buf, self.file_len) {
                        Ok(gguf) => {
                            self.state = State::Complete;
                            self.buf = Vec::new();
                            Ok(Some(gguf))
                        }
                        Err(e) => Err(self.set_failed(e)),
                    };
                }
                Ok(Scan::Need(needed)) => {
                    self.needed = needed;
                    if needed > self.max_header_len {
                        let max = self.max_header_len;
                        return Err(self.fail(GgufError::HeaderTooLarge { needed, max }));
                    }
                    if let Some(have) = self.file_len.filter(|&len| needed > len) {
                        return Err(self.fail(GgufError::Truncated { needed, have }));
                    }
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    // needed <= max_header_len, and the buffer is shorter than needed.
                    let want = (needed - self.buf.len() as u64).min(rest.len() as u64) as usize;
                    self.buf.extend_from_slice(&rest[..want]);
                    rest = &rest[want..];
                }
            }
        }
    }

    /// Records a failure found while scanning. The scanner checks a subset of the rules, so
    /// an earlier problem (a duplicate key, bad UTF-8) may precede the one it found:
    /// re-parsing the buffered bytes reports the first problem in file order, exactly as
    /// [`Gguf::parse`] would. Each scanner step asks for bytes in the same increments as the
    /// parser reads them, so even `Truncated { needed, .. }` agrees.
    fn fail(&mut self, scanned: GgufError) -> GgufError {
        let e = match Gguf::parse_header(&self.buf, None) {
            Err(first) if !matches!(first, GgufError::Truncated { .. }) => first,
            _ => scanned,
        };
        self.set_failed(e)
    }

    fn set_failed(&mut self, e: GgufError) -> GgufError {
        self.state = State::Failed(e.clone());
        self.buf = Vec::new();
        e
    }

    /// True once the header has been returned.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Total bytes fed so far.
    pub fn bytes_fed(&self) -> u64 {
        self.fed
    }

    /// While the header is incomplete: the total input length needed before parsing can go
    /// on (a lower bound on the header length). `None` once complete or failed.
    pub fn needed_bytes(&self) -> Option<u64> {
        matches!(self.state, State::Scanning).then_some(self.needed)
    }

    /// Call when the input has ended: errors with [`GgufError::Truncated`] if the header
    /// never completed (or with the earlier error), `Ok` if it did.
    pub fn finish(&self) -> Result<(), GgufError> {
        match &self.state {
            State::Complete => Ok(()),
            State::Failed(e) => Err(e.clone()),
            State::Scanning => Err(GgufError::Truncated {
                needed: self.needed,
                have: self.fed,
            }),
        }
    }
}
