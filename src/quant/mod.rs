//! GGUF block formats: one struct per block with a size assert, and a plain CPU dequantize
//! that is the test oracle for the GPU kernels (bit-exact with gguf-py's `gguf.quants`).
//!
//! - [`types`]: the ggml type ids and their block geometry;
//! - `float`: F32, F16, BF16;
//! - [`legacy`]: the 32-element blocks Q4_0, Q4_1, Q5_0, Q5_1, Q8_0;
//! - [`kquants`]: the 256-element super-blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K;
//! - `arith`: the reference's f16 widening and f32 NaN rules, made target-independent.
//!
//! A new block format gets its struct and `dequantize` in the file of its family, and one arm
//! in [`dequantize`].

mod arith;
mod float;
pub mod kquants;
pub mod legacy;
pub mod types;

pub use kquants::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};
pub use legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
pub use types::{BlockGeometry, GgmlType};

/// Why a CPU dequantize was refused. Nothing is written to the output in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// The type is not one of [`GgmlType::SUPPORTED`] (or not a ggml type at all).
    #[error("block type {ty} is not supported")]
    Unsupported {
        /// The type asked for.
        ty: GgmlType,
    },
    /// The element count is not a whole number of blocks, or the data is not exactly the
    /// bytes of that many blocks.
    #[error(
        "{ty}: {elems} elements in {bytes} bytes do not fit its blocks of {block_elems} \
         elements; expected a multiple of {block_elems} elements and {expected} bytes"
    )]
    Length {
        /// The block type.
        ty: GgmlType,
        /// Elements asked for (the output length).
        elems: usize,
        /// Bytes given.
        bytes: usize,
        /// Bytes that `elems` (rounded up to whole blocks) take; `usize::MAX` on overflow.
        expected: usize,
        /// Elements per block of `ty`.
        block_elems: u32,
    },
}

/// Bytes that a row of `n_elems` elements of `ty` takes: `None` when `n_elems` is not a
/// whole number of blocks, the type is unknown, or the size overflows `u64`.
pub fn row_bytes(ty: GgmlType, n_elems: u64) -> Option<u64> {
    let g = ty.geometry()?;
    let block_elems = u64::from(g.block_elems);
    if block_elems == 0 || !n_elems.is_multiple_of(block_elems) {
        return None;
    }
    (n_elems / block_elems).checked_mul(u64::from(g.block_bytes))
}

/// Whether blocks of `from` convert to `to` with every value unchanged ([`widen`]): Q4_0 and
/// Q5_0 (a 4- or 5-bit integer times an f16 scale) to Q8_0 (an 8-bit one times the same scale).
pub fn widens_to(from: GgmlType, to: GgmlType) -> bool {
    from == to || (to == GgmlType::Q8_0 && matches!(from, GgmlType::Q4_0 | GgmlType::Q5_0))
}

/// Appends the whole blocks of `data` (of type `from`) to `out` as blocks of `to`, with every
/// value unchanged (see [`widens_to`]); returns the bytes used (a trailing partial block is left
/// for the caller to complete).
pub fn widen(
    from: GgmlType,
    to: GgmlType,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, QuantError> {
    fn each<B: bytemuck::Pod>(
        data: &[u8],
        out: &mut Vec<u8>,
        f: impl Fn(&B) -> BlockQ8_0,
    ) -> usize {
        let n = data.len() / size_of::<B>() * size_of::<B>();
        for c in data[..n].chunks_exact(size_of::<B>()) {
            out.extend_from_slice(bytemuck::bytes_of(&f(&bytemuck::pod_read_unaligned(c))));
        }
        n
    }
    match (from, to) {
        _ if from == to => {
            out.extend_from_slice(data);
            Ok(data.len())
        }
        (GgmlType::Q4_0, GgmlType::Q8_0) => Ok(each(data, out, BlockQ4_0::to_q8_0)),
        (GgmlType::Q5_0, GgmlType::Q8_0) => Ok(each(data, out, BlockQ5_0::to_q8_0)),
        _ => Err(QuantError::Unsupported { ty: from }),
    }
}

/// Dequantizes `data`, the raw blocks of a tensor of type `ty`, into `out` on the CPU.
///
/// `out.len()` must be a whole number of blocks and `data` exactly their bytes. The result
/// equals gguf-py's `gguf.quants.dequantize(data, ty)` bit for bit, NaN payloads, infinities,
/// subnormals and signed zeros included, on every target (see the module docs).
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    check_lengths(ty, data.len(), out.len())?;
    match ty {
        GgmlType::F32 => float::dequantize_f32(data, out),
        GgmlType::F16 => float::dequantize_f16(data, out),
        GgmlType::BF16 => float::dequantize_bf16(data, out),
        GgmlType::Q4_0 => blocks(data, out, BlockQ4_0::dequantize),
        GgmlType::Q4_1 => blocks(data, out, BlockQ4_1::dequantize),
        GgmlType::Q5_0 => blocks(data, out, BlockQ5_0::dequantize),
        GgmlType::Q5_1 => blocks(data, out, BlockQ5_1::dequantize),
        GgmlType::Q8_0 => blocks(data, out, BlockQ8_0::dequantize),
        GgmlType::Q2_K => blocks(data, out, BlockQ2K::dequantize),
        GgmlType::Q3_K => blocks(data, out, BlockQ3K::dequantize),
        GgmlType::Q4_K => blocks(data, out, BlockQ4K::dequantize),
        GgmlType::Q5_K => blocks(data, out, BlockQ5K::dequantize),
        GgmlType::Q6_K => blocks(data, out, BlockQ6K::dequantize),
        _ => return Err(QuantError::Unsupported { ty }),
    }
    Ok(())
}

/// [`dequantize`] into a new vector of `n_elems` elements. The lengths are checked before
/// anything is allocated.
pub fn dequantize_vec(ty: GgmlType, data: &[u8], n_elems: usize) -> Result<Vec<f32>, QuantError> {
    check_lengths(ty, data.len(), n_elems)?;
    let mut out = vec![0.0; n_elems];
    dequantize(ty, data, &mut out)?;
    Ok(out)
}

/// Checks that `elems` is a whole number of blocks of `ty` held in exactly `bytes` bytes.
fn check_lengths(ty: GgmlType, bytes: usize, elems: usize) -> Result<(), QuantError> {
    let geometry = ty.geometry().filter(|_| ty.is_supported());
    let Some(BlockGeometry {
        block_elems,
        block_bytes,
    }) = geometry
    else {
        return Err(QuantError::Unsupported { ty });
    };
    // Geometry values are small constants; usize is at least 32 bits on every Wisp target.
    let (be, bb) = (block_elems as usize, block_bytes as usize);
    let expected = elems.div_ceil(be).saturating_mul(bb);
    if !elems.is_multiple_of(be) || bytes != expected {
        return Err(QuantError::Length {
            ty,
            elems,
            bytes,
            expected,
            block_elems,
        });
    }
    Ok(())
}

/// Runs a block's `dequantize` over `data` and `out`, whose lengths [`check_lengths`] has
/// matched. Every block struct has alignment 1, so any byte slice casts.
fn blocks<B: bytemuck::Pod, const N: usize>(
    data: &[u8],
    out: &mut [f32],
    dequantize: fn(&B, &mut [f32; N]),
) {
    let Ok(blocks) = bytemuck::try_cast_slice::<u8, B>(data) else {
        // Unreachable after check_lengths (sizes match, alignment is 1); leave `out` alone.
        return;
    };
    for (block, chunk) in blocks.iter().zip(out.chunks_exact_mut(N)) {
        if let Ok(chunk) = <&mut [f32; N]>::try_from(chunk) {
            dequantize(block, chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_structs_match_ggml_geometry() {
        let sizes = [
            (GgmlType::Q4_0, size_of::<BlockQ4_0>(), legacy::QK),
            (GgmlType::Q4_1, size_of::<BlockQ4_1>(), legacy::QK),
            (GgmlType::Q5_0, size_of::<BlockQ5_0>(), legacy::QK),
            (GgmlType::Q5_1, size_of::<BlockQ5_1>(), legacy::QK),
            (GgmlType::Q8_0, size_of::<BlockQ8_0>(), legacy::QK),
            (GgmlType::Q2_K, size_of::<BlockQ2K>(), kquants::QK_K),
            (GgmlType::Q3_K, size_of::<BlockQ3K>(), kquants::QK_K),
            (GgmlType::Q4_K, size_of::<BlockQ4K>(), kquants::QK_K),
            (GgmlType::Q5_K, size_of::<BlockQ5K>(), kquants::QK_K),
            (GgmlType::Q6_K, size_of::<BlockQ6K>(), kquants::QK_K),
        ];
        for (ty, bytes, elems) in sizes {
            let g = ty.geometry().unwrap();
            assert_eq!(
                (g.block_bytes as usize, g.block_elems as usize),
                (bytes, elems),
                "{ty}"
            );
        }
    }

    #[test]
    fn row_bytes_checks_blocks_and_overflow() {
        assert_eq!(row_bytes(GgmlType::Q4_K, 4096), Some(16 * 144));
        assert_eq!(row_bytes(GgmlType::F16, 3), Some(6));
        assert_eq!(row_bytes(GgmlType::Q4_0, 0), Some(0));
        assert_eq!(row_bytes(GgmlType::Q4_0, 33), None);
        assert_eq!(row_bytes(GgmlType(63), 32), None);
        assert_eq!(row_bytes(GgmlType::F32, u64::MAX), None);
        // Known to ggml but not supported by Wisp still has a size.
        assert_eq!(row_bytes(GgmlType::IQ2_XXS, 256), Some(66));
    }

    /// Widened Q4_0 and Q5_0 blocks dequantize to the same f32 bits as the originals: every
    /// quant value of each bit pattern, and scales that are normal, subnormal, zero, infinite and
    /// NaN. A partial block at the end is left unconsumed.
    #[test]
    fn widening_to_q8_0_keeps_every_value() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        };
        let scales: [u16; 6] = [0x3C00, 0x0001, 0x0000, 0x7C00, 0x7E01, 0xB555];
        for from in [GgmlType::Q4_0, GgmlType::Q5_0] {
            let bb = from.geometry().unwrap().block_bytes as usize;
            let blocks = 64;
            let mut data: Vec<u8> = (0..blocks * bb + 5).map(|_| byte()).collect();
            for b in 0..blocks {
                let d = scales[b % scales.len()].to_le_bytes();
                data[b * bb..b * bb + 2].copy_from_slice(&d);
            }
            let mut out = Vec::new();
            let used = widen(from, GgmlType::Q8_0, &data, &mut out).unwrap();
            assert_eq!(used, blocks * bb, "{from}");
            assert_eq!(out.len(), blocks * 34, "{from}");
            let n = blocks * 32;
            let a = dequantize_vec(from, &data[..used], n).unwrap();
            let b = dequantize_vec(GgmlType::Q8_0, &out, n).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{from}");
            assert!(widens_to(from, GgmlType::Q8_0));
        }
        assert!(!widens_to(GgmlType::Q4_1, GgmlType::Q8_0));
        assert!(widen(GgmlType::Q4_K, GgmlType::Q8_0, &[0; 144], &mut Vec::new()).is_err());
    }
}
