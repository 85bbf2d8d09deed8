//! Tensor infos: name, shape, type and where the data lies, with the shape arithmetic checked.

use std::ops::Range;

use super::GgufError;
use crate::quant::GgmlType;

/// Most dimensions a GGUF tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// One tensor's description from the GGUF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous row length. 1 to 4 entries, all ≥ 1.
    pub dims: Vec<u64>,
    /// Element type (a known type: unknown ids are rejected when parsing).
    pub ty: GgmlType,
    /// Offset of the data relative to the start of the data section ([`Gguf::data_offset`]).
    ///
    /// [`Gguf::data_offset`]: crate::gguf::Gguf::data_offset
    pub offset: u64,
    /// Product of the dimensions.
    pub n_elements: u64,
    /// Size of the data in bytes (`n_elements / block_elems * block_bytes`).
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Builds a tensor info, checking the shape against the type: 1 to 4 dimensions, none
    /// zero, element count and byte size within u64, rows a whole number of blocks, and a
    /// type id this build knows. Does not check the offset (alignment is per file).
    pub fn new(
        name: String,
        dims: Vec<u64>,
        ty: GgmlType,
        offset: u64,
    ) -> Result<TensorInfo, GgufError> {
        let n_dims = dims.len();
        if n_dims == 0 || n_dims > MAX_DIMS as usize {
            return Err(GgufError::BadDimCount {
                tensor: name,
                n_dims: n_dims as u32,
            });
        }
        let Some(geometry) = ty.geometry() else {
            return Err(GgufError::UnknownType {
                tensor: name,
                id: ty.0,
            });
        };
        // Empty tensors are rejected: no model has one and zero-sized GPU buffers are invalid.
        if dims.contains(&0) {
            return Err(GgufError::ZeroDim { tensor: name, dims });
        }
        let Some(n_elements) = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)) else {
            return Err(GgufError::ElementCountOverflow { tensor: name, dims });
        };
        let block_elems = u64::from(geometry.block_elems);
        if !dims[0].is_multiple_of(block_elems) {
            return Err(GgufError::RowNotBlockMultiple {
                tensor: name,
                row_len: dims[0],
                ty,
                block_elems: geometry.block_elems,
            });
        }
        let Some(n_bytes) = (n_elements / block_elems).checked_mul(u64::from(geometry.block_bytes))
        else {
            return Err(GgufError::ByteSizeOverflow {
                tensor: name,
                n_elements,
                ty,
            });
        };
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            n_elements,
            n_bytes,
        })
    }

    /// Elements per row: `dims[0]`.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of `dims[1..]`.
    pub fn rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        match self.rows() {
            0 => 0,
            rows => self.n_bytes / rows,
        }
    }

    /// Number of dimensions.
    pub fn n_dims(&self) -> usize {
        self.dims.len()
    }

    /// Absolute byte range of the data in the file, given the file's data offset; `None`
    /// if the arithmetic overflows.
    pub fn file_range(&self, data_offset: u64) -> Option<Range<u64>> {
        let start = data_offset.checked_add(self.offset)?;
        let end = start.checked_add(self.n_bytes)?;
        Some(start..end)
    }

    /// Checks that the data lies within a file of `file_len` bytes and returns its range.
    pub fn check_within(&self, data_offset: u64, file_len: u64) -> Result<Range<u64>, GgufError> {
        match self.file_range(data_offset) {
            Some(r) if r.end <= file_len => Ok(r),
            r => Err(GgufError::BeyondEnd {
                tensor: self.name.clone(),
                end: r.map_or(u64::MAX, |r| r.end),
                file_len,
            }),
        }
    }
}
