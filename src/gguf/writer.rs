//! A small GGUF v3 writer: metadata of any type, tensors with raw data, alignment padding.
//! Used by tests and to build random-weight models; its output round-trips through the parser.

use std::io::{self, Write};

use super::value::{MetaArray, MetaValue};
use super::{GgufError, TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT};
use crate::quant::GgmlType;

/// Builds a GGUF file in memory. Tensor data is laid out in insertion order, each tensor
/// padded to the alignment (also after the last, as gguf-py and llama.cpp write it).
///
/// Metadata is written as given: adding a key twice yields a file the parser rejects,
/// which tests use on purpose.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<(TensorInfo, Vec<u8>)>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file with the default alignment.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the version number written in the header (2 and 3 share a layout).
    pub fn version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Sets the data alignment and records it as `general.alignment` (u32), replacing an
    /// earlier entry in place. A key added by hand with [`add`](Self::add) is written but
    /// does not change the layout.
    pub fn alignment(&mut self, alignment: u32) -> Result<&mut Self, GgufError> {
        if !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment {
                alignment: alignment.into(),
            });
        }
        self.alignment = alignment.into();
        let value = MetaValue::U32(alignment);
        match self.metadata.iter_mut().find(|(k, _)| k == ALIGNMENT_KEY) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((ALIGNMENT_KEY.to_owned(), value)),
        }
        Ok(self)
    }

    /// Appends a metadata entry.
    pub fn add(&mut self, key: impl Into<String>, value: MetaValue) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Appends a tensor: `dims` in ggml order (`dims[0]` = row length), `data` its raw bytes,
    /// exactly as many as the shape and type need.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        dims: &[u64],
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, GgufError> {
        let info = TensorInfo::new(name.into(), dims.to_vec(), ty, 0)?;
        let data = data.into();
        if data.len() as u64 != info.n_bytes {
            let reason = format!(
                "{} bytes of data for a shape that needs {}",
                data.len(),
                info.n_bytes
            );
            return Err(GgufError::InvalidTensorData {
                tensor: info.name,
                reason,
            });
        }
        if self.tensors.iter().any(|(t, _)| t.name == info.name) {
            return Err(GgufError::DuplicateTensor { tensor: info.name });
        }
        self.tensors.push((info, data));
        Ok(self)
    }

    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes the whole file to `w`.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&self.version.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut header, key);
            header.extend_from_slice(&(value.value_type() as u32).to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for (info, _) in &self.tensors {
            put_str(&mut header, &info.name);
            header.extend_from_slice(&(info.dims.len() as u32).to_le_bytes());
            for d in &info.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&info.ty.0.to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset += padded(info.n_bytes, self.alignment);
        }
        let header_len = header.len() as u64;
        header.resize(padded(header_len, self.alignment) as usize, 0);
        w.write_all(&header)?;
        for (info, data) in &self.tensors {
            w.write_all(data)?;
            let pad = padded(info.n_bytes, self.alignment) - info.n_bytes;
            w.write_all(&vec![0u8; pad as usize])?;
        }
        Ok(())
    }
}

fn padded(n: u64, alignment: u64) -> u64 {
    n.next_multiple_of(alignment)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => out.push(*v),
        MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array(a) => put_array(out, a),
    }
}

fn put_array(out: &mut Vec<u8>, a: &MetaArray) {
    out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        MetaArray::U8(v) => out.extend_from_slice(v),
        MetaArray::I8(v) => le!(v),
        MetaArray::U16(v) => le!(v),
        MetaArray::I16(v) => le!(v),
        MetaArray::U32(v) => le!(v),
        MetaArray::I32(v) => le!(v),
        MetaArray::U64(v) => le!(v),
        MetaArray::I64(v) => le!(v),
        MetaArray::F32(v) => le!(v),
        MetaArray::F64(v) => le!(v),
        MetaArray::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        MetaArray::String(v) => v.iter().for_each(|s| put_str(out, s)),
        MetaArray::Array(v) => v.iter().for_each(|inner| put_array(out, inner)),
    }
}
