//! Greedy sampling on the GPU: the index and value of the largest of `n` f32 (logits, up to
//! Gemma's 262 144), so a decode step reads back 8 bytes instead of the whole vector.
//!
//! Rules, the same as [`argmax_ref`]: values compare as floats (`−0 == +0`), ties go to the
//! lowest index, NaN never wins; if every value is NaN the index is [`ARGMAX_NONE`] and the
//! value NaN.
//!
//! Layout: `x` is f32 `[n]` (only the first `n` values are read). `out` is a u32 buffer of at
//! least [`ARGMAX_OUT_BYTES`]: word 0 is the index, word 1 the value's bits; the rest holds the
//! first pass's per-workgroup partials. Two passes: up to [`ARGMAX_MAX_GROUPS`] workgroups
//! stride over `x`, then one workgroup reduces their partials.

use super::{check_binding, dispatch};
use crate::gpu::Encoder;
use crate::gpu::{preprocess, Bind, Gpu, GpuError, KernelSpec, Tier};

const SRC: &str = include_str!("../../shaders/argmax.wgsl");

/// Workgroups of the first pass at most (each of 64 invocations).
pub const ARGMAX_MAX_GROUPS: u32 = 256;
/// Size in bytes of the `out` buffer: the result (index, value) then one (key, index) partial
/// per first-pass workgroup.
pub const ARGMAX_OUT_BYTES: u64 = (2 + 2 * ARGMAX_MAX_GROUPS as u64) * 4;
/// The index reported when every value is NaN.
pub const ARGMAX_NONE: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    n: u32,
    groups: u32,
    _pad: [u32; 2],
}

/// Variant bits: the final pass; a first pass that reads a mask.
const V_FINAL: u32 = 1;
const V_MASKED: u32 = 2;

fn source(variant: u32, tier: Tier) -> String {
    let mut flags = Vec::new();
    if variant & V_FINAL != 0 {
        flags.push("FINAL");
    }
    if variant & V_MASKED != 0 {
        flags.push("MASKED");
    }
    if tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    preprocess(SRC, &flags)
}

fn shape_err(detail: String) -> GpuError {
    GpuError::Shape {
        tensor: "argmax".into(),
        detail,
    }
}

/// Records the argmax of the first `n` values of `x` into `enc`; the result lands in the first
/// 8 bytes of `out` (read it with [`read_argmax`]). Sizes are checked before anything is recorded.
pub async fn encode_argmax(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    n: u32,
    out: &wgpu::Buffer,
) -> Result<(), GpuError> {
    encode_argmax_masked(gpu, enc, x, n, None, out).await
}

/// [`encode_argmax`] over the indices whose bit is set in `mask` (u32 words, bit `j % 32` of
/// word `j / 32`; structured output's allowed tokens): none set gives [`ARGMAX_NONE`].
pub async fn encode_argmax_masked(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    n: u32,
    mask: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
) -> Result<(), GpuError> {
    if let Some(m) = mask {
        if m.size() < u64::from(n.div_ceil(32)) * 4 {
            return Err(shape_err(format!(
                "the mask holds {} bits, {n} are needed",
                m.size() * 8
            )));
        }
        check_binding(gpu, "argmax mask", m.size())?;
    }
    if n == 0 {
        return Err(shape_err("x is empty".into()));
    }
    if x.size() < u64::from(n) * 4 {
        return Err(shape_err(format!(
            "x should hold {n} values but holds {}",
            x.size() / 4
        )));
    }
    if out.size() < ARGMAX_OUT_BYTES {
        return Err(shape_err(format!(
            "out holds {} bytes, needs {ARGMAX_OUT_BYTES}",
            out.size()
        )));
    }
    if x == out {
        return Err(shape_err("x and out are the same buffer".into()));
    }
    check_binding(gpu, "argmax x", x.size())?;
    check_binding(gpu, "argmax out", out.size())?;
    let groups = n.div_ceil(64).min(ARGMAX_MAX_GROUPS);
    let params = ArgmaxParams {
        n,
        groups,
        _pad: [0; 2],
    };
    let first = if mask.is_some() { V_MASKED } else { 0 };
    for variant in [first, V_FINAL] {
        let masked = variant & V_MASKED != 0;
        let bindings: &[Bind] = if masked {
            &[Bind::Uniform, Bind::Read, Bind::ReadWrite, Bind::Read]
        } else {
            &[Bind::Uniform, Bind::Read, Bind::ReadWrite]
        };
        let kernel = gpu
            .kernel(&KernelSpec {
                name: "argmax",
                variant,
                source: &|tier| source(variant, tier),
                bindings,
                constants: &[],
            })
            .await?;
        let g = if variant == V_FINAL { 1 } else { groups };
        match mask {
            Some(m) if masked => dispatch(enc, &kernel, &params, &[x, out, m], (g, 1, 1)),
            _ => dispatch(enc, &kernel, &params, &[x, out], (g, 1, 1)),
        }
    }
    Ok(())
}

/// Reads the `(index, value)` that [`encode_argmax`] left in `out` (8 bytes) after the encoder
/// was submitted.
pub async fn read_argmax(gpu: &Gpu, out: &wgpu::Buffer) -> Result<(u32, f32), GpuError> {
    let b = gpu.read_bytes(out, 8).await?;
    Ok(decode_argmax(&b))
}

/// The (index, value) pair from the first 8 bytes of an argmax output.
pub fn decode_argmax(b: &[u8]) -> (u32, f32) {
    let w: [u32; 2] = bytemuck::pod_read_unaligned(&b[..8]);
    (w[0], f32::from_bits(w[1]))
}

/// Convenience for tests and tools: uploads `x` and returns its argmax computed on the GPU.
pub async fn run_argmax(gpu: &Gpu, x: &[f32]) -> Result<(u32, f32), GpuError> {
    let n = u32::try_from(x.len())
        .map_err(|_| shape_err(format!("{} values do not fit u32", x.len())))?;
    let xb = gpu.storage_from("argmax x", x);
    let out = gpu.storage("argmax out", ARGMAX_OUT_BYTES);
    let mut enc = Encoder::new(gpu);
    encode_argmax(gpu, &mut enc, &xb, n, &out).await?;
    enc.submit();
    read_argmax(gpu, &out).await
}

/// Convenience for tests: the argmax of `x` over the indices set in `mask`, on the GPU.
pub async fn run_argmax_masked(gpu: &Gpu, x: &[f32], mask: &[u32]) -> Result<(u32, f32), GpuError> {
    let n = u32::try_from(x.len())
        .map_err(|_| shape_err(format!("{} values do not fit u32", x.len())))?;
    let xb = gpu.storage_from("argmax x", x);
    let mb = gpu.storage_from("argmax mask", bytemuck::cast_slice(mask));
    let out = gpu.storage("argmax out", ARGMAX_OUT_BYTES);
    let mut enc = Encoder::new(gpu);
    encode_argmax_masked(gpu, &mut enc, &xb, n, Some(&mb), &out).await?;
    enc.submit();
    read_argmax(gpu, &out).await
}

/// The reference: `max_by` over the non-NaN values with ties to the lowest index;
/// `(ARGMAX_NONE, NaN)` when there are none.
pub fn argmax_ref(x: &[f32]) -> (u32, f32) {
    x.iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .max_by(|(i, a), (j, b)| {
            a.partial_cmp(b)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(j.cmp(i))
        })
        .map_or((ARGMAX_NONE, f32::NAN), |(i, &v)| (i as u32, v))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for variant in [0, V_FINAL, V_MASKED] {
                crate::ops::act::validate_wgsl(
                    &format!("argmax v{variant}"),
                    tier,
                    &source(variant, tier),
                );
            }
        }
    }

    #[test]
    fn reference_rules() {
        assert_eq!(argmax_ref(&[1.0, 3.0, 3.0, 2.0]), (1, 3.0));
        assert_eq!(argmax_ref(&[f32::NAN, -1.0, -1.0]), (1, -1.0));
        let (i, v) = argmax_ref(&[-0.0, 0.0]);
        assert_eq!((i, v.to_bits()), (0, (-0.0f32).to_bits()));
        let (i, v) = argmax_ref(&[f32::NAN, f32::NAN]);
        assert!(i == ARGMAX_NONE && v.is_nan());
        assert_eq!(
            argmax_ref(&[f32::NEG_INFINITY, f32::NAN]),
            (0, f32::NEG_INFINITY)
        );
    }
}
