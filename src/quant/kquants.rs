//! The 256-element K-quant super-blocks: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
//!
//! Layouts are ggml's `block_q2_K` ... `block_q6_K`; element order and arithmetic order are
//! gguf-py's (`gguf/quants.py`), which match ggml's `dequantize_row_q*_K` element for element.
//! Each super-block scale is first multiplied by the sub-block scale, then by the quant:
//! `(d * sc) * q`, never `d * (sc * q)`, and the min term is subtracted last.

use bytemuck::{Pod, Zeroable};

use super::arith::{f16_le, mul, sub};

/// Elements per K-quant super-block (ggml `QK_K`).
pub const QK_K: usize = 256;
/// Bytes of the packed 6-bit scales and mins of Q4_K and Q5_K, and of Q3_K's scales (ggml
/// `K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// ggml `block_q2_K`: 16 sub-blocks of 16, `x = (d * sc) * q - dmin * m`, q in 0..4.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ2K {
    /// Per sub-block: scale in the low nibble, min in the high nibble.
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants, four per byte (see [`BlockQ2K::dequantize`] for the order).
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the scales, f16 little-endian.
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16 little-endian.
    pub dmin: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ2K>() == 84);

/// ggml `block_q3_K`: 16 sub-blocks of 16, `x = (d * (sc - 32)) * q`, q in -4..4.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ3K {
    /// High bit of each quant, inverted: bit `e / 32` of byte `e % 32` is set when q >= 0.
    pub hmask: [u8; QK_K / 8],
    /// Low 2 bits of each quant, four per byte, as in [`BlockQ2K`].
    pub qs: [u8; QK_K / 4],
    /// 16 six-bit scales, biased by 32: low nibbles in bytes 0..8, high pairs in 8..12.
    pub scales: [u8; K_SCALE_SIZE],
    /// Super-block scale, f16 little-endian.
    pub d: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ3K>() == 110);

/// ggml `block_q4_K`: 8 sub-blocks of 32, `x = (d * sc) * q - dmin * m`, q in 0..16.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4K {
    /// Super-block scale for the scales, f16 little-endian.
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16 little-endian.
    pub dmin: [u8; 2],
    /// 8 six-bit scales and 8 six-bit mins, packed as ggml's `get_scale_min_k4` reads them.
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants: byte `32 * c + l` holds element `64 * c + l` (low) and `+ 32` (high).
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(size_of::<BlockQ4K>() == 144);

/// ggml `block_q5_K`: as [`BlockQ4K`] with a fifth bit, q in 0..32.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ5K {
    /// Super-block scale for the scales, f16 little-endian.
    pub d: [u8; 2],
    /// Super-block scale for the mins, f16 little-endian.
    pub dmin: [u8; 2],
    /// Scales and mins, as in [`BlockQ4K`].
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits: bit `g` of byte `l` belongs to element `32 * g + l`.
    pub qh: [u8; QK_K / 8],
    /// Low 4 bits, as in [`BlockQ4K`].
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(size_of::<BlockQ5K>() == 176);

/// ggml `block_q6_K`: 16 sub-blocks of 16, `x = (d * sc) * (q - 32)`, q in 0..64.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6K {
    /// Low 4 bits of each quant (see [`BlockQ6K::dequantize`] for the order).
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of each quant, four per byte.
    pub qh: [u8; QK_K / 4],
    /// Signed 8-bit sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale, f16 little-endian.
    pub d: [u8; 2],
}
const _: () = assert!(size_of::<BlockQ6K>() == 210);

/// Scale and min `j` (0..8) of Q4_K / Q5_K: ggml `get_scale_min_k4`, gguf-py
/// `Q4_K.get_scale_min`.
#[inline]
fn scale_min_k4(s: &[u8; K_SCALE_SIZE], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 0x3F, s[j + 4] & 0x3F)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Per sub-block `(d * sc, dmin * m)` of Q4_K / Q5_K, each a single rounded product.
#[inline]
fn scales_mins_k4(d: [u8; 2], dmin: [u8; 2], s: &[u8; K_SCALE_SIZE]) -> [(f32, f32); 8] {
    let d = f16_le(d);
    let dmin = f16_le(dmin);
    std::array::from_fn(|j| {
        let (sc, m) = scale_min_k4(s, j);
        (mul(d, f32::from(sc)), mul(dmin, f32::from(m)))
    })
}

impl BlockQ2K {
    /// Dequantizes as gguf-py does: `dl * f32(q) - ml` with `dl = d * f32(sc)` and
    /// `ml = dmin * f32(m)` per sub-block of 16.
    ///
    /// Element `e = 128 * h + 32 * s + l` is bits `2s..2s+2` of `qs[32 * h + l]`.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        let d = f16_le(self.d);
        let dmin = f16_le(self.dmin);
        let dl: [(f32, f32); 16] = std::array::from_fn(|g| {
            let sc = self.scales[g];
            (mul(d, f32::from(sc & 0x0F)), mul(dmin, f32::from(sc >> 4)))
        });
        for (e, o) in out.iter_mut().enumerate() {
            let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
            let q = (self.qs[32 * h + l] >> (2 * s)) & 3;
            let (dl, ml) = dl[e / 16];
            *o = sub(mul(dl, f32::from(q)), ml);
        }
    }
}

impl BlockQ3K {
    /// Scale `j` (0..16) with its bias of 32 removed.
    #[inline]
    fn scale(&self, j: usize) -> i8 {
        let s = &self.scales;
        let lo = if j < 8 { s[j] & 0x0F } else { s[j - 8] >> 4 };
        let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        (lo | (hi << 4)) as i8 - 32
    }

    /// Dequantizes as gguf-py does: `dl * f32(q)` with `dl = d * f32(sc - 32)` per sub-block
    /// of 16 and `q = low2 - 4 * (1 - hbit)`.
    ///
    /// Element `e = 128 * h + 32 * s + l` takes its low bits from bits `2s..2s+2` of
    /// `qs[32 * h + l]` and its high bit from bit `e / 32` of `hmask[l]`.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        let d = f16_le(self.d);
        let dl: [f32; 16] = std::array::from_fn(|j| mul(d, f32::from(self.scale(j))));
        for (e, o) in out.iter_mut().enumerate() {
            let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = (self.qs[32 * h + l] >> (2 * s)) & 3;
            let high = (self.hmask[l] >> (e / 32)) & 1;
            let q = low as i8 - (((high ^ 1) << 2) as i8);
            *o = mul(dl[e / 16], f32::from(q));
        }
    }
}

impl BlockQ4K {
    /// Dequantizes as gguf-py does: `(d * f32(sc)) * f32(q) - dmin * f32(m)` per sub-block
    /// of 32.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        let sm = scales_mins_k4(self.d, self.dmin, &self.scales);
        for (e, o) in out.iter_mut().enumerate() {
            let (c, s, l) = (e / 64, (e % 64) / 32, e % 32);
            let q = (self.qs[32 * c + l] >> (4 * s)) & 0x0F;
            let (dd, dm) = sm[e / 32];
            *o = sub(mul(dd, f32::from(q)), dm);
        }
    }
}

impl BlockQ5K {
    /// Dequantizes as [`BlockQ4K::dequantize`], with `q = low4 | hbit << 4`.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        let sm = scales_mins_k4(self.d, self.dmin, &self.scales);
        for (e, o) in out.iter_mut().enumerate() {
            let (g, c, s, l) = (e / 32, e / 64, (e % 64) / 32, e % 32);
            let low = (self.qs[32 * c + l] >> (4 * s)) & 0x0F;
            let high = (self.qh[l] >> g) & 1;
            let (dd, dm) = sm[g];
            *o = sub(mul(dd, f32::from(low | (high << 4))), dm);
        }
    }
}

impl BlockQ6K {
    /// Dequantizes as gguf-py does: `(d * f32(sc)) * f32(q - 32)` per sub-block of 16.
    ///
    /// In each half `h` of 128 elements, element `128 * h + r` takes its low 4 bits from
    /// `ql[64 * h + r % 64]` (low nibble for `r < 64`, high otherwise) and its high 2 bits
    /// from bits `2 * (r / 32)..` of `qh[32 * h + r % 32]`.
    pub fn dequantize(&self, out: &mut [f32; QK_K]) {
        let d = f16_le(self.d);
        let dl: [f32; 16] = std::array::from_fn(|g| mul(d, f32::from(self.scales[g])));
        for (e, o) in out.iter_mut().enumerate() {
            let (h, r) = (e / 128, e % 128);
            let low = (self.ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
            let high = (self.qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
            let q = (low | (high << 4)) as i8 - 32;
            *o = mul(dl[e / 16], f32::from(q));
        }
    }
}
