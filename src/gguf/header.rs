//! [`Gguf`]: a parsed header (metadata and tensor infos) with typed lookups.

use std::ops::Range;

use super::parse::parse_header;
use super::value::{MetaArray, MetaValue};
use super::{GgufError, TensorInfo};

/// A parsed GGUF header: everything but the tensor data, which stays in the file (or the
/// memory map, or the download stream) at [`Gguf::data_offset`] + [`TensorInfo::offset`].
///
/// Lookups scan linearly: a model has tens of keys and a few hundred tensors, and keeping
/// the struct plain (comparable, constructible) is worth more than a hash index.
#[derive(Clone, Debug, PartialEq)]
pub struct Gguf {
    /// File format version: 2 or 3.
    pub version: u32,
    /// Metadata in file order; keys are unique.
    pub metadata: Vec<(String, MetaValue)>,
    /// Tensor infos in file order; names are unique, ranges do not overlap.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment: `general.alignment`, or 32. A nonzero power of two.
    pub alignment: u64,
    /// Absolute offset of the data section: the header length rounded up to `alignment`.
    pub data_offset: u64,
}

impl Gguf {
    /// Parses a complete file (e.g. a memory map): the header, and checks that every tensor's
    /// data lies within `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Gguf, GgufError> {
        parse_header(bytes, Some(bytes.len() as u64))
    }

    /// Parses from a buffer that holds at least the whole header (more is ignored). With
    /// `file_len`, also checks that every tensor's data lies within a file of that length.
    pub fn parse_header(header: &[u8], file_len: Option<u64>) -> Result<Gguf, GgufError> {
        parse_header(header, file_len)
    }

    /// Length of the header including padding: where tensor data starts (= `data_offset`).
    pub fn header_len(&self) -> u64 {
        self.data_offset
    }

    /// The value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// An integer of any type whose value fits in a u32.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key)?.as_u32()
    }

    /// An integer of any type whose value fits in a u64.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// An integer of any type whose value fits in an i32.
    pub fn get_i32(&self, key: &str) -> Option<i32> {
        self.get(key)?.as_i32()
    }

    /// An integer of any type whose value fits in an i64.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// An f32 (or an f64 rounded).
    pub fn get_f32(&self, key: &str) -> Option<f32> {
        self.get(key)?.as_f32()
    }

    /// An f64 (or an f32 widened).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// A bool.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// An array.
    pub fn get_array(&self, key: &str) -> Option<&MetaArray> {
        self.get(key)?.as_array()
    }

    /// The value of a key that must be present.
    pub fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_owned(),
        })
    }

    /// A required string.
    pub fn require_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "string", v))
    }

    /// A required integer that fits in a u32.
    pub fn require_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.require(key)?;
        v.as_u32()
            .ok_or_else(|| wrong_type(key, "integer in u32 range", v))
    }

    /// A required integer that fits in a u64.
    pub fn require_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(key, "integer in u64 range", v))
    }

    /// A required f32 (or f64).
    pub fn require_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| wrong_type(key, "float", v))
    }

    /// A required array.
    pub fn require_array(&self, key: &str) -> Result<&MetaArray, GgufError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| wrong_type(key, "array", v))
    }

    /// `general.architecture`, e.g. `"gemma3"`: the prefix of the model's own keys.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The tensor of that name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor of that name, or [`GgufError::NoSuchTensor`].
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor(name).ok_or_else(|| GgufError::NoSuchTensor {
            name: name.to_owned(),
        })
    }

    /// Absolute byte range of a tensor's data in the file (what a browser fetches with a
    /// `Range` request). `None` only if the arithmetic overflows, which parsing rules out.
    pub fn tensor_range(&self, t: &TensorInfo) -> Option<Range<u64>> {
        t.file_range(self.data_offset)
    }

    /// A tensor's data within the complete file `file`, bounds-checked.
    pub fn tensor_data<'a>(&self, file: &'a [u8], t: &TensorInfo) -> Result<&'a [u8], GgufError> {
        let r = t.check_within(self.data_offset, file.len() as u64)?;
        // Within a slice's length, so both ends fit in usize.
        Ok(&file[r.start as usize..r.end as usize])
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &MetaValue) -> GgufError {
    GgufError::WrongType {
        key: key.to_owned(),
        expected,
        found: found.type_name(),
    }
}
