//! The one error type of the GGUF parser: every malformed input maps to a variant that names
//! the problem and, where there is one, the metadata key or tensor involved.

use std::path::PathBuf;
use std::sync::Arc;

use crate::quant::GgmlType;

/// Everything that can go wrong reading or writing a GGUF file. The parser never panics:
/// a malformed file always ends up as one of these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GgufError {
    /// The input ends before the header (or a tensor's data) does. `needed` is the total
    /// input length required to make progress, `have` what there is. A [`StreamParser`]
    /// waits for more bytes instead, unless the file length is known to be too short.
    ///
    /// [`StreamParser`]: crate::gguf::StreamParser
    #[error("GGUF input truncated: need at least {needed} bytes, have {have}")]
    Truncated {
        /// Total input length needed to make progress.
        needed: u64,
        /// Input length available.
        have: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: it starts with \"{}\", expected \"GGUF\"", found.escape_ascii())]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// Version 1 (32-bit counts) or newer than 3.
    #[error("unsupported GGUF version {version}: Wisp reads versions 2 and 3")]
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },
    /// The header declares more tensors than [`MAX_TENSORS`](crate::gguf::MAX_TENSORS).
    #[error("GGUF header declares {count} tensors, more than the limit of {max}")]
    TooManyTensors {
        /// Declared count.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The header declares more metadata entries than [`MAX_KVS`](crate::gguf::MAX_KVS).
    #[error("GGUF header declares {count} metadata entries, more than the limit of {max}")]
    TooManyKvs {
        /// Declared count.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A string longer than [`MAX_STRING_LEN`](crate::gguf::MAX_STRING_LEN).
    #[error("string in {context} declares {len} bytes, more than the limit of {max}")]
    StringTooLong {
        /// Where the string is (a key, a key's value, a tensor name).
        context: String,
        /// Declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An array longer than [`MAX_ARRAY_LEN`](crate::gguf::MAX_ARRAY_LEN).
    #[error("array in metadata key `{key}` declares {len} elements, more than the limit of {max}")]
    ArrayTooLong {
        /// The metadata key holding the array.
        key: String,
        /// Declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Arrays nested deeper than [`MAX_NESTING`](crate::gguf::MAX_NESTING).
    #[error("arrays in metadata key `{key}` are nested more than {max} deep")]
    NestingTooDeep {
        /// The metadata key holding the array.
        key: String,
        /// The limit.
        max: u32,
    },
    /// A string that is not UTF-8.
    #[error("string in {context} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string is.
        context: String,
    },
    /// A metadata value type id GGUF does not define.
    #[error("metadata key `{key}` has unknown value type {id}")]
    UnknownValueType {
        /// The metadata key (for array elements: the key holding the array).
        key: String,
        /// The type id found.
        id: u32,
    },
    /// A bool stored as something other than 0 or 1.
    #[error("metadata key `{key}` holds bool byte {value}, expected 0 or 1")]
    InvalidBool {
        /// The metadata key.
        key: String,
        /// The byte found.
        value: u8,
    },
    /// The same metadata key twice.
    #[error("metadata key `{key}` appears twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// `general.alignment` is zero, not a power of two, or so large the data offset overflows.
    #[error("general.alignment is {alignment}: must be a nonzero power of two")]
    BadAlignment {
        /// The value found.
        alignment: u64,
    },
    /// A tensor with zero or more than four dimensions.
    #[error("tensor `{tensor}` has {n_dims} dimensions: GGUF allows 1 to 4")]
    BadDimCount {
        /// Tensor name (or `#index` if the name itself was unreadable).
        tensor: String,
        /// Declared dimension count.
        n_dims: u32,
    },
    /// A dimension of zero: Wisp rejects empty tensors (see [`crate::gguf`]).
    #[error("tensor `{tensor}` has a zero dimension in {dims:?}")]
    ZeroDim {
        /// Tensor name.
        tensor: String,
        /// Its dimensions, ggml order.
        dims: Vec<u64>,
    },
    /// The product of the dimensions does not fit in a u64.
    #[error("tensor `{tensor}` element count overflows: dims {dims:?}")]
    ElementCountOverflow {
        /// Tensor name.
        tensor: String,
        /// Its dimensions, ggml order.
        dims: Vec<u64>,
    },
    /// The element count times the type's bytes per element does not fit in a u64.
    #[error("tensor `{tensor}` byte size overflows: {n_elements} elements of {ty}")]
    ByteSizeOverflow {
        /// Tensor name.
        tensor: String,
        /// Element count.
        n_elements: u64,
        /// Tensor type.
        ty: GgmlType,
    },
    /// A ggml type id this build does not know.
    #[error("tensor `{tensor}` has unknown ggml type id {id}")]
    UnknownType {
        /// Tensor name.
        tensor: String,
        /// The type id found.
        id: u32,
    },
    /// The row length (dims\[0\]) is not a multiple of the type's block size.
    #[error("tensor `{tensor}` rows of {row_len} elements are not a multiple of the {ty} block of {block_elems}")]
    RowNotBlockMultiple {
        /// Tensor name.
        tensor: String,
        /// dims\[0\].
        row_len: u64,
        /// Tensor type.
        ty: GgmlType,
        /// Elements per block of that type.
        block_elems: u32,
    },
    /// A tensor data offset that is not a multiple of the file's alignment.
    #[error(
        "tensor `{tensor}` data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// Two tensors with the same name.
    #[error("tensor `{tensor}` appears twice")]
    DuplicateTensor {
        /// Tensor name.
        tensor: String,
    },
    /// Two tensors whose data ranges overlap.
    #[error("tensors `{first}` and `{second}` overlap in the data section")]
    OverlappingTensors {
        /// The tensor with the lower offset.
        first: String,
        /// The tensor starting inside it.
        second: String,
    },
    /// Tensor data that extends past the end of the file (or its offset arithmetic overflows).
    #[error(
        "tensor `{tensor}` data ends at byte {end}, beyond the end of the file ({file_len} bytes)"
    )]
    BeyondEnd {
        /// Tensor name.
        tensor: String,
        /// Absolute end of its data (saturated at u64::MAX on overflow).
        end: u64,
        /// File length.
        file_len: u64,
    },
    /// A streamed header longer than the parser's limit.
    #[error("GGUF header needs {needed} bytes, more than the streaming limit of {max}")]
    HeaderTooLarge {
        /// Header bytes needed so far.
        needed: u64,
        /// The limit.
        max: u64,
    },
    /// A required metadata key is absent.
    #[error("metadata key `{key}` is missing")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value of the wrong type (or an integer out of range for the requested type).
    #[error("metadata key `{key}` holds {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the file holds.
        found: &'static str,
    },
    /// No tensor of that name.
    #[error("no tensor named `{name}` in the GGUF file")]
    NoSuchTensor {
        /// The name asked for.
        name: String,
    },
    /// Writer input that cannot form a valid file (e.g. data length not matching the shape).
    #[error("cannot write tensor `{tensor}`: {reason}")]
    InvalidTensorData {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// Opening or mapping a file failed.
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (shared so that the error stays `Clone`).
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A directory was given where a GGUF file was expected.
    #[error("{path} is a directory, not a GGUF file")]
    IsDirectory { path: PathBuf },
    /// A file that does not parse: the error, the file and what probably happened.
    #[error("{path}: {source}{}", hint_for(source))]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<GgufError>,
    },
}

/// What a parse error most likely means for a file on disk.
fn hint_for(e: &GgufError) -> &'static str {
    match e {
        GgufError::Truncated { .. } | GgufError::BeyondEnd { .. } => {
            " (the file is shorter than its header says: probably an incomplete download; fetch it again)"
        }
        GgufError::BadMagic { .. } => " (is this a model file? Wisp reads .gguf files)",
        _ => "",
    }
}
