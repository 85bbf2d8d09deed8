//! Plain CPU references for the GPU ops, computed in f64 over the CPU dequantize (the oracle).

use crate::quant::{self, GgmlType, QuantError};

/// gguf-py's dequantize with its one multiply-add per element evaluated as a fused
/// multiply-add, for the formats whose formula has one (`d * q + m`, `(d·sc) * q - (dmin·m)`).
/// A GPU compiler may contract that expression into an FMA, so a GPU value is correct when it
/// equals either the plain result or this one, bit for bit. `None` for formats that are pure
/// products (no contraction possible: the GPU must match exactly).
pub fn dequantize_fused(ty: GgmlType, data: &[u8], n: usize) -> Option<Vec<f32>> {
    let g = ty.geometry()?;
    let (be, bb) = (g.block_elems as usize, g.block_bytes as usize);
    if !n.is_multiple_of(be) || data.len() != n / be * bb {
        return None;
    }
    let h = |b: &[u8], o: usize| half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32();
    let mut out = Vec::with_capacity(n);
    for b in data.chunks_exact(bb) {
        match ty {
            GgmlType::Q4_1 | GgmlType::Q5_1 => {
                let (d, m) = (h(b, 0), h(b, 2));
                let (qh, qs) = if ty == GgmlType::Q5_1 {
                    (u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..24])
                } else {
                    (0, &b[4..20])
                };
                for j in 0..32 {
                    let low = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
                    let q = u32::from(low) | (((qh >> j) & 1) << 4);
                    out.push(d.mul_add(q as f32, m));
                }
            }
            GgmlType::Q2_K => {
                let (d, dmin) = (h(b, 80), h(b, 82));
                for e in 0..256 {
                    let sc = b[e / 16];
                    let (dl, ml) = (d * f32::from(sc & 15), dmin * f32::from(sc >> 4));
                    let q = (b[16 + (e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3;
                    out.push(dl.mul_add(f32::from(q), -ml));
                }
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                let (d, dmin) = (h(b, 0), h(b, 2));
                let sc = &b[4..16];
                for e in 0..256 {
                    let s = e / 32;
                    let (scale, min) = if s < 4 {
                        (sc[s] & 63, sc[s + 4] & 63)
                    } else {
                        (
                            (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4),
                            (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4),
                        )
                    };
                    let (dl, ml) = (d * f32::from(scale), dmin * f32::from(min));
                    let qs_at = if ty == GgmlType::Q5_K { 48 } else { 16 };
                    let mut q = (b[qs_at + (s / 2) * 32 + e % 32] >> (4 * (s % 2))) & 15;
                    if ty == GgmlType::Q5_K {
                        q |= ((b[16 + e % 32] >> s) & 1) << 4;
                    }
                    out.push(dl.mul_add(f32::from(q), -ml));
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Result of comparing a GPU dequantization with the CPU oracle.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DequantComparison {
    /// Elements bit-identical to gguf-py's arithmetic.
    pub exact: usize,
    /// Elements equal to the fused-multiply-add evaluation of the same formula instead.
    pub fused: usize,
    /// Index, GPU value and oracle value of the first element matching neither.
    pub first_mismatch: Option<(usize, f32, f32)>,
    /// Elements matching neither.
    pub mismatches: usize,
}

/// Compares `gpu` with the CPU dequantize of `data` (and its fused evaluation, see [`dequantize_fused`]).
pub fn compare_dequant(
    ty: GgmlType,
    data: &[u8],
    gpu: &[f32],
) -> Result<DequantComparison, QuantError> {
    let cpu = quant::dequantize_vec(ty, data, gpu.len())?;
    let fused = dequantize_fused(ty, data, gpu.len());
    let mut c = DequantComparison::default();
    for (i, (&g, &r)) in gpu.iter().zip(&cpu).enumerate() {
        if g.to_bits() == r.to_bits() || (g.is_nan() && r.is_nan()) {
            c.exact += 1;
        } else if fused
            .as_ref()
            .is_some_and(|f| f[i].to_bits() == g.to_bits())
        {
            c.fused += 1;
        } else {
            c.mismatches += 1;
            if c.first_mismatch.is_none() {
                c.first_mismatch = Some((i, g, r));
            }
        }
    }
    Ok(c)
}

/// The f64 reference for a GPU matvec/matmul and the rigorous bound on the GPU's error.
pub struct DotReference {
    /// Exact (f64) results over the CPU-dequantized weights, `cols` columns of `rows`.
    pub exact: Vec<f64>,
    /// Bound on |gpu − exact| per output.
    pub bound: Vec<f64>,
}

/// Computes Y = W·X in f64 and, for each output, the bound any correct f32 kernel stays within:
/// γ(k+1)·Σ|wᵢxᵢ| (any summation order, with or without FMA: Higham, *Accuracy and Stability
/// of Numerical Algorithms*, §3.1, γ(n) = n·u/(1 − n·u), u = 2⁻²⁴) plus Σ|w̃ᵢ − wᵢ|·|xᵢ| where w̃
/// is the fused-multiply-add evaluation of the dequantize ([`dequantize_fused`]), because the GPU
/// may contract that expression. Real kernels land around 1% of this bound.
pub fn dot_reference(
    ty: GgmlType,
    data: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
    cols: usize,
) -> Result<DotReference, QuantError> {
    let w = quant::dequantize_vec(ty, data, rows * k)?;
    let wf = dequantize_fused(ty, data, rows * k);
    let n = (k + 1) as f64;
    let u = 2f64.powi(-24);
    let gamma = n * u / (1.0 - n * u);
    let mut exact = vec![0f64; rows * cols];
    let mut bound = vec![0f64; rows * cols];
    for c in 0..cols {
        let xc = &x[c * k..(c + 1) * k];
        for r in 0..rows {
            let wr = &w[r * k..(r + 1) * k];
            let (mut e, mut a, mut f) = (0f64, 0f64, 0f64);
            for i in 0..k {
                let p = f64::from(wr[i]) * f64::from(xc[i]);
                e += p;
                a += p.abs();
                if let Some(wf) = &wf {
                    f += (f64::from(wf[r * k + i]) - f64::from(wr[i])).abs()
                        * f64::from(xc[i]).abs();
                }
            }
            exact[c * rows + r] = e;
            bound[c * rows + r] = gamma * a + f + f64::from(f32::MIN_POSITIVE);
        }
    }
    Ok(DotReference { exact, bound })
}

impl DotReference {
    /// max |gpu − exact| / bound over all outputs: ≤ 1 is correct.
    pub fn error_ratio(&self, gpu: &[f32]) -> f64 {
        if gpu.len() != self.exact.len() {
            return f64::INFINITY;
        }
        gpu.iter()
            .zip(&self.exact)
            .zip(&self.bound)
            .map(|((&g, &e), &b)| {
                if g.is_finite() {
                    (f64::from(g) - e).abs() / b
                } else {
                    f64::INFINITY
                }
            })
            .fold(0.0, f64::max)
    }
}
