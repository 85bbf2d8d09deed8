//! The f32 arithmetic of the reference (gguf-py on numpy, x86-64), made explicit so that the
//! CPU dequantize gives the same bits on every target, NaN payloads included.
//!
//! Finite and infinite results are plain IEEE 754 binary32 with round-to-nearest-even and no
//! fused operations, which every Rust target provides. Only NaNs need care: Rust (like LLVM and
//! wasm) leaves the payload of a NaN result unspecified, while numpy on x86-64 gets the SSE
//! rule: a NaN operand is returned quieted, the first operand's when both are NaN, and an
//! invalid operation (`inf * 0`, `inf - inf`) gives the "indefinite" NaN `0xFFC0_0000`.

/// The NaN x86 produces for an invalid operation: negative, quiet, no payload.
const X86_DEFAULT_NAN: u32 = 0xFFC0_0000;
/// The quiet bit of an f32 NaN.
const QUIET_BIT: u32 = 0x0040_0000;

/// f16 bits to f32 as numpy's `astype(np.float32)` does it (`npy_halfbits_to_floatbits`).
///
/// Finite values and infinities convert exactly, as everywhere; a NaN keeps its sign and its
/// payload shifted up, and a signaling NaN stays signaling (the `half` crate, and the F16C
/// instruction, would set the quiet bit).
#[inline]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    if h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 {
        let sign = u32::from(h & 0x8000) << 16;
        f32::from_bits(sign | 0x7F80_0000 | (u32::from(h & 0x03FF) << 13))
    } else {
        half::f16::from_bits(h).to_f32()
    }
}

/// f16 stored little-endian, as in every ggml block.
#[inline]
pub(crate) fn f16_le(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

/// Replaces a NaN result by the one x86 SSE gives for `a op b`.
#[inline]
fn x86_nan(r: f32, a: f32, b: f32) -> f32 {
    if !r.is_nan() {
        r
    } else if a.is_nan() {
        f32::from_bits(a.to_bits() | QUIET_BIT)
    } else if b.is_nan() {
        f32::from_bits(b.to_bits() | QUIET_BIT)
    } else {
        f32::from_bits(X86_DEFAULT_NAN)
    }
}

/// `a * b` with `a` as numpy's first operand.
#[inline]
pub(crate) fn mul(a: f32, b: f32) -> f32 {
    x86_nan(a * b, a, b)
}

/// `a + b` with `a` as numpy's first operand.
#[inline]
pub(crate) fn add(a: f32, b: f32) -> f32 {
    x86_nan(a + b, a, b)
}

/// `a - b`.
#[inline]
pub(crate) fn sub(a: f32, b: f32) -> f32 {
    x86_nan(a - b, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_nan_payloads_are_kept() {
        assert_eq!(f16_to_f32(0x7C01).to_bits(), 0x7F80_2000); // signaling stays signaling
        assert_eq!(f16_to_f32(0xFE01).to_bits(), 0xFFC0_2000);
        assert_eq!(f16_to_f32(0x0001).to_bits(), 0x3380_0000); // 2^-24
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0xFC00), f32::NEG_INFINITY);
    }

    #[test]
    fn x86_nan_rules() {
        let a = f32::from_bits(0x7FC0_0001);
        let b = f32::from_bits(0x7FC0_0002);
        let s = f32::from_bits(0x7F80_0001);
        assert_eq!(add(a, b).to_bits(), 0x7FC0_0001);
        assert_eq!(add(b, a).to_bits(), 0x7FC0_0002);
        assert_eq!(mul(2.0, s).to_bits(), 0x7FC0_0001);
        assert_eq!(mul(f32::INFINITY, 0.0).to_bits(), X86_DEFAULT_NAN);
        assert_eq!(sub(f32::INFINITY, f32::INFINITY).to_bits(), X86_DEFAULT_NAN);
        assert_eq!(mul(-0.0, 3.0).to_bits(), 0x8000_0000);
    }
}
