//! Synthetic block data for tests and benchmarks: random quant bits with finite scales.

use crate::quant::GgmlType;

/// Byte offsets of the f16 scale fields (`d`, `dmin`, `m`) inside one block of `ty`.
pub fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// A small xorshift generator: tests and benchmarks stay deterministic without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.0 | 1;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.0 = s;
        s
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// A finite f16 bit pattern of either sign with magnitude in [2^-10, 2^5).
    pub fn half_bits(&mut self) -> u16 {
        let r = self.next_u64();
        let sign = ((r >> 63) as u16) << 15;
        let exp = 5 + (r % 15) as u16;
        sign | (exp << 10) | ((r >> 20) as u16 & 0x3ff)
    }
}

/// `rows` rows of `k` elements of `ty`: random bytes, then every scale field (or, for float
/// types, every element) replaced by a finite value of moderate magnitude.
pub fn random_weight(ty: GgmlType, rows: u64, k: u64, seed: u64) -> Vec<u8> {
    let Some(g) = ty.geometry() else {
        return Vec::new();
    };
    let Some(row_bytes) = crate::quant::row_bytes(ty, k) else {
        return Vec::new();
    };
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut data: Vec<u8> = (0..row_bytes * rows)
        .map(|_| (rng.next_u64() >> 32) as u8)
        .collect();
    let bb = g.block_bytes as usize;
    match ty {
        GgmlType::F32 => {
            for c in data.chunks_exact_mut(4) {
                c.copy_from_slice(&rng.unit().to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for c in data.chunks_exact_mut(2) {
                c.copy_from_slice(&rng.half_bits().to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for c in data.chunks_exact_mut(2) {
                c.copy_from_slice(&((rng.unit().to_bits() >> 16) as u16).to_le_bytes());
            }
        }
        _ => {
            for block in data.chunks_exact_mut(bb) {
                for &o in scale_offsets(ty) {
                    block[o..o + 2].copy_from_slice(&rng.half_bits().to_le_bytes());
                }
            }
        }
    }
    data
}
