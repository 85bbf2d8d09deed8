//! The plain float formats: F32, F16, BF16. One "block" is one element.
//!
//! gguf-py only reinterprets or widens these, so every bit pattern, NaN payloads and signaling
//! NaNs included, comes through unchanged apart from the widening itself.

use super::arith::f16_le;

/// F32: a reinterpretation of the little-endian bytes (`data.view(np.float32)`).
pub(crate) fn dequantize_f32(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(4)) {
        *o = f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
}

/// F16: numpy's exact widening, signaling NaNs kept (see [`super::arith::f16_to_f32`]).
pub(crate) fn dequantize_f16(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(2)) {
        *o = f16_le([b[0], b[1]]);
    }
}

/// BF16: the upper half of an f32 (`int16 -> int32 << 16`, then a view), a pure bit move.
pub(crate) fn dequantize_bf16(data: &[u8], out: &mut [f32]) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(2)) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
    }
}
