//! The 32-element legacy blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//!
//! Layouts are ggml's `block_q4_0` ... `block_q8_0`. Element `j < 16` of a 4/5-bit block is the
//! low nibble of `qs[j]`, element `j + 16` its high nibble; bit `j` of the little-endian `qh`
//! is the fifth bit of element `j`. Arithmetic order is gguf-py's, see each `dequantize`.

use bytemuck::{Pod, Zeroable};

use super::arith::{add, f16_le, mul};

/// Elements per legacy block (ggml `QK4_0`, `QK4_1`, `QK5_0`, `QK5_1`, `QK8_0`).
pub const QK: usize = 32;

/// ggml `block_q4_0`: `x = d * (q - 8)`, q in 0..16.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// 4-bit quants, two per byte (low nibble: element j, high: element j + 16).
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ4_0>() == 18);

/// ggml `block_q4_1`: `x = d * q + m`, q in 0..16.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Offset (the block minimum), f16 little-endian.
    pub m: [u8; 2],
    /// 4-bit quants, as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ4_1>() == 20);

/// ggml `block_q5_0`: `x = d * (q - 16)`, q in 0..32.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_0 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Fifth bits, a little-endian u32: bit j belongs to element j.
    pub qh: [u8; 4],
    /// Low 4 bits, as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ5_0>() == 22);

/// ggml `block_q5_1`: `x = d * q + m`, q in 0..32.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5_1 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Offset (the block minimum), f16 little-endian.
    pub m: [u8; 2],
    /// Fifth bits, as in [`BlockQ5_0`].
    pub qh: [u8; 4],
    /// Low 4 bits, as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}
const _: () = assert!(size_of::<BlockQ5_1>() == 24);

/// ggml `block_q8_0`: `x = q * d`, q an i8.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// 8-bit quants, one per element.
    pub qs: [i8; QK],
}
const _: () = assert!(size_of::<BlockQ8_0>() == 34);

/// Low and high nibble of `b` (elements j and j + 16).
#[inline]
fn nibbles(b: u8) -> (u8, u8) {
    (b & 0x0F, b >> 4)
}

/// The 5-bit quants of a Q5 block, element order.
#[inline]
fn q5(qh: [u8; 4], qs: &[u8; QK / 2]) -> [u8; QK] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; QK];
    for (i, &b) in qs.iter().enumerate() {
        let (lo, hi) = nibbles(b);
        q[i] = lo | ((((qh >> i) & 1) as u8) << 4);
        q[i + QK / 2] = hi | ((((qh >> (i + QK / 2)) & 1) as u8) << 4);
    }
    q
}

impl BlockQ4_0 {
    /// Dequantizes as gguf-py does: `d * f32(q - 8)`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le(self.d);
        for (i, &b) in self.qs.iter().enumerate() {
            let (lo, hi) = nibbles(b);
            out[i] = mul(d, f32::from(lo as i8 - 8));
            out[i + QK / 2] = mul(d, f32::from(hi as i8 - 8));
        }
    }
}

impl BlockQ4_1 {
    /// Dequantizes as gguf-py does: `(d * f32(q)) + m`, the product as the first operand of
    /// the sum (see [`BlockQ5_1::dequantize`] on NaN payloads).
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le(self.d);
        let m = f16_le(self.m);
        for (i, &b) in self.qs.iter().enumerate() {
            let (lo, hi) = nibbles(b);
            out[i] = add(mul(d, f32::from(lo)), m);
            out[i + QK / 2] = add(mul(d, f32::from(hi)), m);
        }
    }
}

impl BlockQ5_0 {
    /// Dequantizes as gguf-py does: `d * f32(q - 16)`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le(self.d);
        for (o, q) in out.iter_mut().zip(q5(self.qh, &self.qs)) {
            *o = mul(d, f32::from(q as i8 - 16));
        }
    }
}

impl BlockQ5_1 {
    /// Dequantizes as gguf-py does: `(d * f32(q)) + m`.
    ///
    /// When both `d * q` and `m` are NaN, numpy returns the product's payload for inputs of two
    /// or more blocks and `m`'s for an input of exactly one block (its broadcasting loop puts
    /// the scalar first then). Wisp follows the many-block case, so that a block dequantizes
    /// the same wherever it sits; the same holds for [`BlockQ4_1`].
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le(self.d);
        let m = f16_le(self.m);
        for (o, q) in out.iter_mut().zip(q5(self.qh, &self.qs)) {
            *o = add(mul(d, f32::from(q)), m);
        }
    }
}

impl BlockQ8_0 {
    /// Dequantizes as gguf-py does: `f32(q) * d`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le(self.d);
        for (o, &q) in out.iter_mut().zip(self.qs.iter()) {
            *o = mul(f32::from(q), d);
        }
    }
}

impl BlockQ4_0 {
    /// The same values as a Q8_0 block (`d · (q − 8)` is `(q − 8) · d`): lossless, 34 bytes
    /// instead of 18.
    pub fn to_q8_0(&self) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        for (i, &b) in self.qs.iter().enumerate() {
            let (lo, hi) = nibbles(b);
            qs[i] = lo as i8 - 8;
            qs[i + QK / 2] = hi as i8 - 8;
        }
        BlockQ8_0 { d: self.d, qs }
    }
}

impl BlockQ5_0 {
    /// The same values as a Q8_0 block (`d · (q − 16)` is `(q − 16) · d`): lossless, 34 bytes
    /// instead of 22.
    pub fn to_q8_0(&self) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        for (o, q) in qs.iter_mut().zip(q5(self.qh, &self.qs)) {
            *o = q as i8 - 16;
        }
        BlockQ8_0 { d: self.d, qs }
    }
}
