//! The parser proper: a bounds-checked little-endian cursor over a byte slice that holds at
//! least the whole header, and the walk over header, metadata and tensor infos.
//!
//! Order of reads and checks matters: the streaming [`Scanner`](super::stream) walks the same
//! structure and must reach each error at the same point, so keep the two in step.

use std::collections::HashSet;

use super::tensor::MAX_DIMS;
use super::value::{MetaArray, MetaValue, ValueType};
use super::{
    Gguf, GgufError, TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAX_ARRAY_LEN, MAX_KVS,
    MAX_NESTING, MAX_STRING_LEN, MAX_TENSORS,
};
use crate::quant::GgmlType;

/// The GGUF magic, as it appears in the file.
pub(crate) const MAGIC: [u8; 4] = *b"GGUF";

/// Bounds-checked cursor. Every read that runs past the end is `Truncated`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let truncated = || GgufError::Truncated {
            needed: (self.pos as u64).saturating_add(n),
            have: self.buf.len() as u64,
        };
        let n_usize = usize::try_from(n).map_err(|_| truncated())?;
        if n_usize > self.remaining() {
            return Err(truncated());
        }
        let bytes = &self.buf[self.pos..self.pos + n_usize];
        self.pos += n_usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string; `context` names it in errors.
    fn string(&mut self, context: impl Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING_LEN {
            return Err(GgufError::StringTooLong {
                context: context(),
                len,
                max: MAX_STRING_LEN,
            });
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { context: context() })
    }

    /// Capacity for `count` elements of at least `min_size` bytes each: never more than
    /// the bytes left could hold, so a lying count cannot cause a huge allocation.
    fn capacity(&self, count: u64, min_size: u64) -> usize {
        let fits = self.remaining() as u64 / min_size.max(1);
        count.min(fits) as usize
    }

    fn value(&mut self, ty: ValueType, key: &str, level: u32) -> Result<MetaValue, GgufError> {
        Ok(match ty {
            ValueType::U8 => MetaValue::U8(self.array::<1>()?[0]),
            ValueType::I8 => MetaValue::I8(i8::from_le_bytes(self.array()?)),
            ValueType::U16 => MetaValue::U16(u16::from_le_bytes(self.array()?)),
            ValueType::I16 => MetaValue::I16(i16::from_le_bytes(self.array()?)),
            ValueType::U32 => MetaValue::U32(self.u32()?),
            ValueType::I32 => MetaValue::I32(i32::from_le_bytes(self.array()?)),
            ValueType::U64 => MetaValue::U64(self.u64()?),
            ValueType::I64 => MetaValue::I64(i64::from_le_bytes(self.array()?)),
            ValueType::F32 => MetaValue::F32(f32::from_le_bytes(self.array()?)),
            ValueType::F64 => MetaValue::F64(f64::from_le_bytes(self.array()?)),
            ValueType::Bool => MetaValue::Bool(bool_of(self.array::<1>()?[0], key)?),
            ValueType::String => MetaValue::String(self.string(|| value_context(key))?),
            ValueType::Array => MetaValue::Array(self.meta_array(key, level + 1)?),
        })
    }

    /// An array at nesting `level` (1 for an array that is a key's value).
    fn meta_array(&mut self, key: &str, level: u32) -> Result<MetaArray, GgufError> {
        let elem_id = self.u32()?;
        let len = self.u64()?;
        let elem = check_array_header(key, level, elem_id, len)?;
        Ok(match elem {
            ValueType::U8 => MetaArray::U8(self.take(len)?.to_vec()),
            ValueType::I8 => MetaArray::I8(self.fixed(len, i8::from_le_bytes)?),
            ValueType::U16 => MetaArray::U16(self.fixed(len, u16::from_le_bytes)?),
            ValueType::I16 => MetaArray::I16(self.fixed(len, i16::from_le_bytes)?),
            ValueType::U32 => MetaArray::U32(self.fixed(len, u32::from_le_bytes)?),
            ValueType::I32 => MetaArray::I32(self.fixed(len, i32::from_le_bytes)?),
            ValueType::U64 => MetaArray::U64(self.fixed(len, u64::from_le_bytes)?),
            ValueType::I64 => MetaArray::I64(self.fixed(len, i64::from_le_bytes)?),
            ValueType::F32 => MetaArray::F32(self.fixed(len, f32::from_le_bytes)?),
            ValueType::F64 => MetaArray::F64(self.fixed(len, f64::from_le_bytes)?),
            ValueType::Bool => {
                let bytes = self.take(len)?;
                MetaArray::Bool(
                    bytes
                        .iter()
                        .map(|&b| bool_of(b, key))
                        .collect::<Result<_, _>>()?,
                )
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(self.capacity(len, elem.min_size()));
                for _ in 0..len {
                    v.push(self.string(|| value_context(key))?);
                }
                MetaArray::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(self.capacity(len, elem.min_size()));
                for _ in 0..len {
                    v.push(self.meta_array(key, level + 1)?);
                }
                MetaArray::Array(v)
            }
        })
    }

    /// `len` little-endian fixed-size elements, read in one bounds check.
    fn fixed<const N: usize, T>(
        &mut self,
        len: u64,
        from_le: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        // len <= MAX_ARRAY_LEN and N <= 8: no overflow.
        let bytes = self.take(len * N as u64)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                from_le(a)
            })
            .collect())
    }

    fn tensor_info(&mut self, index: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
        let name = self.string(|| format!("name of tensor #{index}"))?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::BadDimCount {
                tensor: name,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let ty = GgmlType(self.u32()?);
        let offset = self.u64()?;
        let info = TensorInfo::new(name, dims, ty, offset)?;
        if !info.offset.is_multiple_of(alignment) {
            return Err(GgufError::Misaligned {
                tensor: info.name,
                offset: info.offset,
                alignment,
            });
        }
        Ok(info)
    }
}

/// Context string for a string inside a key's value.
fn value_context(key: &str) -> String {
    format!("value of metadata key `{key}`")
}

fn bool_of(byte: u8, key: &str) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::InvalidBool {
            key: key.to_owned(),
            value,
        }),
    }
}

/// Checks an array header (shared with the streaming scanner, so both fail alike).
pub(crate) fn check_array_header(
    key: &str,
    level: u32,
    elem_id: u32,
    len: u64,
) -> Result<ValueType, GgufError> {
    if level > MAX_NESTING {
        return Err(GgufError::NestingTooDeep {
            key: key.to_owned(),
            max: MAX_NESTING,
        });
    }
    let Some(elem) = ValueType::from_u32(elem_id) else {
        return Err(GgufError::UnknownValueType {
            key: key.to_owned(),
            id: elem_id,
        });
    };
    if len > MAX_ARRAY_LEN {
        return Err(GgufError::ArrayTooLong {
            key: key.to_owned(),
            len,
            max: MAX_ARRAY_LEN,
        });
    }
    Ok(elem)
}

/// Checks the preamble's counts (shared with the streaming scanner).
pub(crate) fn check_counts(n_tensors: u64, n_kvs: u64) -> Result<(), GgufError> {
    if n_tensors > MAX_TENSORS {
        return Err(GgufError::TooManyTensors {
            count: n_tensors,
            max: MAX_TENSORS,
        });
    }
    if n_kvs > MAX_KVS {
        return Err(GgufError::TooManyKvs {
            count: n_kvs,
            max: MAX_KVS,
        });
    }
    Ok(())
}

/// Checks magic and version (shared with the streaming scanner).
pub(crate) fn check_magic(found: [u8; 4]) -> Result<(), GgufError> {
    if found == MAGIC {
        Ok(())
    } else {
        Err(GgufError::BadMagic { found })
    }
}

/// Accepts versions 2 and 3 (same layout; v1 had 32-bit counts and is long obsolete).
pub(crate) fn check_version(version: u32) -> Result<(), GgufError> {
    match version {
        2 | 3 => Ok(()),
        _ => Err(GgufError::UnsupportedVersion { version }),
    }
}

/// Parses a buffer holding at least the whole header. With `file_len`, also checks that
/// every tensor's data lies within the file.
pub(crate) fn parse_header(buf: &[u8], file_len: Option<u64>) -> Result<Gguf, GgufError> {
    let mut r = Reader { buf, pos: 0 };
    check_magic(r.array()?)?;
    let version = r.u32()?;
    check_version(version)?;
    let n_tensors = r.u64()?;
    let n_kvs = r.u64()?;
    check_counts(n_tensors, n_kvs)?;

    // Key + type + smallest value: 13 bytes per entry at least.
    let mut metadata = Vec::with_capacity(r.capacity(n_kvs, 13));
    let mut keys = HashSet::with_capacity(metadata.capacity());
    for i in 0..n_kvs {
        let key = r.string(|| format!("metadata key #{i}"))?;
        if !keys.insert(key.clone()) {
            return Err(GgufError::DuplicateKey { key });
        }
        let id = r.u32()?;
        let Some(ty) = ValueType::from_u32(id) else {
            return Err(GgufError::UnknownValueType { key, id });
        };
        let value = r.value(ty, &key, 0)?;
        metadata.push((key, value));
    }
    drop(keys);

    let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => a,
            Some(a) => return Err(GgufError::BadAlignment { alignment: a }),
            None => {
                return Err(GgufError::WrongType {
                    key: ALIGNMENT_KEY.to_owned(),
                    expected: "unsigned integer",
                    found: v.type_name(),
                })
            }
        },
    };

    // Name length + n_dims + one dim + type + offset: 32 bytes per tensor at least.
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(r.capacity(n_tensors, 32));
    let mut names = HashSet::with_capacity(tensors.capacity());
    for i in 0..n_tensors {
        let info = r.tensor_info(i, alignment)?;
        if !names.insert(info.name.clone()) {
            return Err(GgufError::DuplicateTensor { tensor: info.name });
        }
        tensors.push(info);
    }
    drop(names);

    let header_end = r.pos as u64;
    let data_offset = header_end
        .checked_next_multiple_of(alignment)
        .ok_or(GgufError::BadAlignment { alignment })?;
    check_tensor_ranges(&tensors, data_offset, file_len)?;

    Ok(Gguf {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// Every tensor's range must be computable, within the file when its length is known, and
/// not overlap another's.
fn check_tensor_ranges(
    tensors: &[TensorInfo],
    data_offset: u64,
    file_len: Option<u64>,
) -> Result<(), GgufError> {
    for t in tensors {
        t.check_within(data_offset, file_len.unwrap_or(u64::MAX))?;
    }
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        // Both ranges were checked above, so the additions cannot overflow.
        if pair[1].offset < pair[0].offset + pair[0].n_bytes {
            return Err(GgufError::OverlappingTensors {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
    }
    Ok(())
}
