//! RMS norm on the GPU, with its f64 CPU reference.
//!
//! Layout: `x` and `y` are f32 `[rows][n]`, row-major; `w` is f32 `[n]` and optional. Rows are
//! tokens (`n = n_embd`) or heads (Gemma 3's QK-norm: `rows = tokens × heads`, `n = head_dim`).
//! `y[r][i] = x[r][i] / sqrt(mean_i(x[r][i]²) + eps) · w[i]`. llama.cpp's Gemma GGUFs already
//! store the norm weights with the `+1` added, so a plain `· w` is right for every architecture.
//!
//! In place is allowed (`y` the same buffer as `x`); `w` must not be `y`. Buffers may be longer
//! than `rows × n`: only the first `rows × n` values are read and written.
//!
//! One workgroup of 64 invocations per row, sum of squares reduced in workgroup memory (T0, T1)
//! or with `subgroupAdd` (T2).

use super::matvec::X8;
use super::{check_binding, dispatch, grid};
use crate::gpu::Encoder;
use crate::gpu::{preprocess, Bind, Gpu, GpuError, KernelSpec, Tier};

const SRC: &str = include_str!("../../shaders/norm.wgsl");
const RESIDUAL: &str = include_str!("../../shaders/residual_norm.wgsl");
/// The workgroup row sum both kernels append.
const ROW_SUM: &str = include_str!("../../shaders/row_sum.wgsl");

/// Variant bit: the weight `w` is bound and applied.
const V_WEIGHT: u32 = 1;
/// Variant bit: `y` is `x`.
const V_INPLACE: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct NormParams {
    rows: u32,
    n: u32,
    grid_x: u32,
    eps: f32,
    inv_n: f32,
    _pad: [u32; 3],
}

/// The WGSL of one variant (`V_*` bits) at `tier`, without the `enable` header.
fn source(variant: u32, tier: Tier) -> String {
    let mut flags = Vec::new();
    if variant & V_WEIGHT != 0 {
        flags.push("WEIGHT");
    }
    if variant & V_INPLACE != 0 {
        flags.push("INPLACE");
    }
    if tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    preprocess(&format!("{SRC}\n{ROW_SUM}"), &flags)
}

/// The WGSL of the residual kernel (`post`: Gemma's post-norm) at `tier`.
fn residual_source(post: bool, x8: bool, tier: Tier) -> String {
    let mut flags = Vec::new();
    if post {
        flags.push("POST");
    }
    if tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    let piece = if x8 {
        flags.push("X8");
        super::matvec::X8_PIECE
    } else {
        ""
    };
    preprocess(&format!("{RESIDUAL}\n{ROW_SUM}\n{piece}"), &flags)
}

fn shape_err(detail: String) -> GpuError {
    GpuError::Shape {
        tensor: "rms_norm".into(),
        detail,
    }
}

/// Checks `rows × n` (at least 1 each) against two `[rows][n]` buffers, and `eps`.
fn check_rows(
    rows: u32,
    n: u32,
    eps: f32,
    a: (&str, &wgpu::Buffer),
    b: (&str, &wgpu::Buffer),
) -> Result<(), GpuError> {
    if rows == 0 || n == 0 {
        return Err(shape_err(format!(
            "{} is [{rows}][{n}]: rows and n must be at least 1",
            a.0
        )));
    }
    let need = u64::from(rows) * u64::from(n) * 4;
    if a.1.size() < need || b.1.size() < need {
        return Err(shape_err(format!(
            "{} and {} are [{rows}][{n}] ({need} bytes) but the buffers have {} and {} bytes",
            a.0,
            b.0,
            a.1.size(),
            b.1.size()
        )));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(GpuError::BadSetting {
            name: "rms_norm eps".into(),
            value: eps.to_string(),
            reason: "must be finite and not negative".into(),
        });
    }
    Ok(())
}

/// Records `y = rms_norm(x) · w` over `rows` rows of `n` values into `enc` (see the module
/// docs for layouts). `y` may be `x` (in place). Sizes are checked before anything is recorded.
#[allow(clippy::too_many_arguments)]
pub async fn encode_rms_norm(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    w: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
    eps: f32,
) -> Result<(), GpuError> {
    check_rows(rows, n, eps, ("x", x), ("y", y))?;
    if let Some(w) = w {
        if w.size() < u64::from(n) * 4 {
            return Err(shape_err(format!(
                "x is [{rows}][{n}] but w has {} values, not {n}",
                w.size() / 4
            )));
        }
        if w == y {
            return Err(shape_err("w and y are the same buffer".into()));
        }
    }
    check_binding(gpu, "rms_norm x", x.size())?;
    check_binding(gpu, "rms_norm y", y.size())?;
    let inplace = x == y;
    let variant = if w.is_some() { V_WEIGHT } else { 0 } | if inplace { V_INPLACE } else { 0 };
    let mut bindings = vec![
        Bind::Uniform,
        if inplace { Bind::ReadWrite } else { Bind::Read },
    ];
    if w.is_some() {
        bindings.push(Bind::Read);
    }
    if !inplace {
        bindings.push(Bind::ReadWrite);
    }
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "rms_norm",
            variant,
            source: &|tier| source(variant, tier),
            bindings: &bindings,
            constants: &[],
        })
        .await?;
    let (gx, gy) = grid(gpu, rows);
    let params = NormParams {
        rows,
        n,
        grid_x: gx,
        eps,
        inv_n: 1.0 / n as f32,
        _pad: [0; 3],
    };
    let mut bufs = vec![x];
    if let Some(w) = w {
        bufs.push(w);
    }
    if !inplace {
        bufs.push(y);
    }
    dispatch(enc, &kernel, &params, &bufs, (gx, gy, 1));
    Ok(())
}

/// Records the residual step between two sublayers over `rows` rows of `n` values:
/// `x += post_w.map_or(h, |pw| rms_norm(h) · pw)`, then `h = rms_norm(x) · w` (the next
/// sublayer's pre-norm), in one dispatch (`shaders/residual_norm.wgsl`). It computes what
/// [`encode_rms_norm`] (with `post_w`), an add and [`encode_rms_norm`] compute in turn. With
/// `x8` it also quantizes the new `h` into it, as
/// [`encode_quantize_x8`](super::matvec::encode_quantize_x8) would (the next matvecs' input at
/// `fast` precision).
#[allow(clippy::too_many_arguments)]
pub async fn encode_residual_norm(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    h: &wgpu::Buffer,
    post_w: Option<&wgpu::Buffer>,
    w: &wgpu::Buffer,
    x8: Option<&X8>,
    rows: u32,
    n: u32,
    eps: f32,
) -> Result<(), GpuError> {
    check_rows(rows, n, eps, ("x", x), ("h", h))?;
    if let Some(q) = x8 {
        let values = u64::from(rows) * u64::from(n);
        if !n.is_multiple_of(32) || values > u64::from(q.capacity) {
            return Err(shape_err(format!(
                "{rows} rows of {n} values to quantize: rows must be whole 32-value pieces \
                 within the x8 buffers ({} values)",
                q.capacity
            )));
        }
    }
    for (name, b) in [("w", Some(w)), ("post_w", post_w)] {
        if let Some(b) = b {
            if b.size() < u64::from(n) * 4 {
                return Err(shape_err(format!(
                    "rows have {n} values but {name} has {}",
                    b.size() / 4
                )));
            }
            if b == x || b == h {
                return Err(shape_err(format!("{name} is the same buffer as x or h")));
            }
        }
    }
    if x == h {
        return Err(shape_err("x and h are the same buffer".into()));
    }
    check_binding(gpu, "residual x", x.size())?;
    check_binding(gpu, "residual h", h.size())?;
    let (post, quant) = (post_w.is_some(), x8.is_some());
    let mut bindings = vec![Bind::Uniform, Bind::ReadWrite, Bind::ReadWrite, Bind::Read];
    if post || quant {
        bindings.push(Bind::Read);
    }
    if quant {
        bindings.extend([Bind::ReadWrite, Bind::ReadWrite]);
    }
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "residual_norm",
            variant: u32::from(post) | u32::from(quant) << 1,
            source: &|tier| residual_source(post, quant, tier),
            bindings: &bindings,
            constants: &[],
        })
        .await?;
    let (gx, gy) = grid(gpu, rows);
    let params = NormParams {
        rows,
        n,
        grid_x: gx,
        eps,
        inv_n: 1.0 / n as f32,
        _pad: [0; 3],
    };
    let mut bufs = vec![x, h, w];
    // Without the post-norm, the X8 layout's slot 4 holds w again (read-only twice is allowed).
    match (post_w, x8) {
        (Some(pw), _) => bufs.push(pw),
        (None, Some(_)) => bufs.push(w),
        (None, None) => {}
    }
    if let Some(q) = x8 {
        bufs.extend([&q.q, &q.s]);
    }
    dispatch(enc, &kernel, &params, &bufs, (gx, gy, 1));
    Ok(())
}

/// Convenience for tests and tools: uploads `x` (`[x.len() / n][n]`) and `w`, runs the norm,
/// reads `y` back.
pub async fn run_rms_norm(
    gpu: &Gpu,
    x: &[f32],
    w: Option<&[f32]>,
    n: u32,
    eps: f32,
) -> Result<Vec<f32>, GpuError> {
    if n == 0 || x.is_empty() || !x.len().is_multiple_of(n as usize) {
        return Err(shape_err(format!(
            "x has {} values, not a whole number of rows of {n}",
            x.len()
        )));
    }
    let rows = u32::try_from(x.len() / n as usize)
        .map_err(|_| shape_err(format!("{} rows do not fit u32", x.len() / n as usize)))?;
    let xb = gpu.storage_from("rms_norm x", x);
    let wb = w.map(|w| gpu.storage_from("rms_norm w", w));
    let yb = gpu.storage("rms_norm y", x.len() as u64 * 4);
    let mut enc = Encoder::new(gpu);
    encode_rms_norm(gpu, &mut enc, &xb, wb.as_ref(), &yb, rows, n, eps).await?;
    enc.submit();
    gpu.read_f32(&yb, x.len()).await
}

/// The f64 reference: `y[r][i] = x[r][i] / sqrt(mean(x[r]²) + eps) · w[i]` for every whole row
/// of `n` values in `x`.
pub fn rms_norm_ref(x: &[f32], w: Option<&[f32]>, n: usize, eps: f32) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks_exact(n.max(1)) {
        let ms = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / n as f64;
        let r = 1.0 / (ms + f64::from(eps)).sqrt();
        for (i, &v) in row.iter().enumerate() {
            let wi = w.map_or(1.0, |w| f64::from(w[i]));
            y.push(f64::from(v) * r * wi);
        }
    }
    y
}

/// The unit roundoff of f32, 2⁻²⁴.
const U: f64 = 1.0 / 16_777_216.0;

/// The bound on `|y_gpu − y_ref| / |y_ref|` for a row of `n` values, any summation order:
/// γ(n)/2 from the f32 sum of squares (γ(n) = n·u/(1 − n·u), u = 2⁻²⁴, halved by the square
/// root), 3u for the mean and `+ eps`, also halved, 4u for `inverseSqrt` (2 ULP in WGSL), 2u for
/// the two products. First order; the second-order terms are below u².
pub fn rms_norm_rel_bound(n: usize) -> f64 {
    let u = U;
    let nu = n as f64 * u;
    let gamma = nu / (1.0 - nu);
    gamma / 2.0 + 1.5 * u + 4.0 * u + 2.0 * u
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for variant in 0..4 {
                crate::ops::act::validate_wgsl(
                    &format!("rms_norm v{variant}"),
                    tier,
                    &source(variant, tier),
                );
            }
        }
    }

    #[test]
    fn residual_variants_validate() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for post in [false, true] {
                for x8 in [false, true] {
                    crate::ops::act::validate_wgsl(
                        &format!("residual_norm post={post} x8={x8}"),
                        tier,
                        &residual_source(post, x8, tier),
                    );
                }
            }
        }
    }

    #[test]
    fn reference_normalizes() {
        let y = rms_norm_ref(&[3.0, 4.0], Some(&[1.0, 2.0]), 2, 0.0);
        let r = (12.5f64).sqrt();
        assert!((y[0] - 3.0 / r).abs() < 1e-15 && (y[1] - 8.0 / r).abs() < 1e-15);
    }
}
