//! Element-wise ops of the transformer block on the GPU, each with its f64 CPU reference:
//! [`encode_geglu`] (Gemma's FFN), [`encode_swiglu`] (Llama, Qwen), [`encode_add`] (residuals),
//! [`encode_add_bias`] (a bias row added to every row: Qwen 2's q/k/v biases),
//! [`encode_scale`] (embedding scale, attention scale).
//!
//! Layout: every operand is f32 `[rows][n]` (rows are tokens), contiguous, so the ops see
//! `rows × n` values; buffers may be longer and the rest is left alone. The gated ops take gate
//! and up as two buffers. The bias of [`encode_add_bias`] is f32 `[n]`.
//!
//! In place: the output may be the first operand (`out == gate`, `y == a`, `y == x`); `add` also
//! accepts `y == b` (it is commutative, bit for bit). `out == up` for the gated ops and
//! `y == bias` are refused.

use super::{check_binding, dispatch, grid};
use crate::gpu::Encoder;
use crate::gpu::{preprocess, Bind, Gpu, GpuError, KernelSpec};

const SRC: &str = include_str!("../../shaders/act.wgsl");
/// `softcap(x, c)` and the `tanh_f32` it uses; appended to the attention kernels too.
pub(crate) const SOFTCAP_WGSL: &str = include_str!("../../shaders/softcap.wgsl");
/// `silu` and `gelu_tanh`, shared with the fused gate+up matvec kernels.
pub(crate) const ACT_FNS: &str = include_str!("../../shaders/act_fns.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Geglu,
    Swiglu,
    Add,
    AddBias,
    Scale,
    Softcap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Geglu => "geglu",
            Kind::Swiglu => "swiglu",
            Kind::Add => "add",
            Kind::AddBias => "add_bias",
            Kind::Scale => "scale",
            Kind::Softcap => "softcap",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Kind::Geglu => "GEGLU",
            Kind::Swiglu => "SWIGLU",
            Kind::Add => "ADD",
            Kind::AddBias => "ADD_BIAS",
            Kind::Scale => "SCALE",
            Kind::Softcap => "SOFTCAP",
        }
    }

    fn binary(self) -> bool {
        !matches!(self, Kind::Scale | Kind::Softcap)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ActParams {
    len: u32,
    grid_x: u32,
    s: f32,
    n: u32,
}

fn source(kind: Kind, inplace: bool) -> String {
    let mut flags = vec![kind.flag()];
    if inplace {
        flags.push("INPLACE");
    }
    if !kind.binary() {
        flags.push("UNARY");
    }
    preprocess(&format!("{SRC}\n{ACT_FNS}\n{SOFTCAP_WGSL}"), &flags)
}

fn shape_err(kind: Kind, detail: String) -> GpuError {
    GpuError::Shape {
        tensor: kind.name().into(),
        detail,
    }
}

/// Checks the sizes, picks the variant and records one dispatch. `b` is `None` for `scale`.
#[allow(clippy::too_many_arguments)]
async fn encode(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    kind: Kind,
    a: &wgpu::Buffer,
    b: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
    s: f32,
) -> Result<(), GpuError> {
    let (an, bn) = match kind {
        Kind::Geglu | Kind::Swiglu => ("gate", "up"),
        Kind::Add => ("a", "b"),
        Kind::AddBias => ("x", "bias"),
        Kind::Scale | Kind::Softcap => ("x", ""),
    };
    let len = u64::from(rows) * u64::from(n);
    if len == 0 {
        return Err(shape_err(
            kind,
            format!("{an} is [{rows}][{n}]: rows and n must be at least 1"),
        ));
    }
    let len = u32::try_from(len)
        .map_err(|_| shape_err(kind, format!("[{rows}][{n}] has more than 2^32 values")))?;
    let need = u64::from(len) * 4;
    let mut sizes = vec![(an, a.size(), need)];
    if let Some(b) = b {
        let b_need = if kind == Kind::AddBias {
            u64::from(n) * 4
        } else {
            need
        };
        sizes.push((bn, b.size(), b_need));
    }
    sizes.push(("the output", y.size(), need));
    if let Some((name, size, want)) = sizes.iter().find(|(_, size, want)| size < want) {
        let hint = if kind == Kind::Add && *name == bn {
            " (for one row added to every row, use encode_add_bias)"
        } else {
            ""
        };
        return Err(shape_err(
            kind,
            format!(
                "operands are [{rows}][{n}] but {name} holds {} values, not {}{hint}",
                size / 4,
                want / 4
            ),
        ));
    }
    for (name, size, _) in &sizes {
        check_binding(gpu, &format!("{} {name}", kind.name()), *size)?;
    }
    let inplace = y == a;
    if inplace && b == Some(y) {
        return Err(shape_err(
            kind,
            format!("the output may be {an} or {bn}, not both at once"),
        ));
    }
    if !inplace && b == Some(y) {
        return Err(shape_err(
            kind,
            format!("the output may be {an} (in place) but not {bn}"),
        ));
    }
    let mut bindings = vec![
        Bind::Uniform,
        if inplace { Bind::ReadWrite } else { Bind::Read },
    ];
    let mut bufs = vec![a];
    if let Some(b) = b {
        bindings.push(Bind::Read);
        bufs.push(b);
    }
    if !inplace {
        bindings.push(Bind::ReadWrite);
        bufs.push(y);
    }
    debug_assert_eq!(b.is_some(), kind.binary());
    let kernel = gpu
        .kernel(&KernelSpec {
            name: kind.name(),
            variant: u32::from(inplace),
            source: &|_| source(kind, inplace),
            bindings: &bindings,
            constants: &[],
        })
        .await?;
    let (gx, gy) = grid(gpu, len.div_ceil(64));
    let params = ActParams {
        len,
        grid_x: gx,
        s,
        n,
    };
    dispatch(enc, &kernel, &params, &bufs, (gx, gy, 1));
    Ok(())
}

/// Records `y = act(gate) · up` over `[rows][n]` where gate and up are the two halves of each
/// row of `gu` (`[rows][2n]`, a fused gate+up projection): GeGLU (`gelu`) or SwiGLU. `y` must
/// not be `gu`.
#[allow(clippy::too_many_arguments)]
pub async fn encode_glu_halves(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    gu: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
    gelu: bool,
) -> Result<(), GpuError> {
    let kind = if gelu { Kind::Geglu } else { Kind::Swiglu };
    let len = u64::from(rows) * u64::from(n);
    if len == 0 || len > u64::from(u32::MAX) {
        return Err(shape_err(
            kind,
            format!("[{rows}][{n}] is empty or too large"),
        ));
    }
    if gu.size() < 2 * len * 4 || y.size() < len * 4 {
        return Err(shape_err(
            kind,
            format!(
                "gate+up is [{rows}][2·{n}] and y [{rows}][{n}], but the buffers hold {} and {} values",
                gu.size() / 4,
                y.size() / 4
            ),
        ));
    }
    if gu == y {
        return Err(shape_err(kind, "y may not be the gate+up buffer".into()));
    }
    check_binding(gpu, &format!("{} gate+up", kind.name()), gu.size())?;
    check_binding(gpu, &format!("{} y", kind.name()), y.size())?;
    let kernel = gpu
        .kernel(&KernelSpec {
            name: kind.name(),
            variant: 2,
            source: &|_| halves_source(kind),
            bindings: &[Bind::Uniform, Bind::Read, Bind::ReadWrite],
            constants: &[],
        })
        .await?;
    let len = len as u32;
    let (gx, gy) = grid(gpu, len.div_ceil(64));
    let params = ActParams {
        len,
        grid_x: gx,
        s: 0.0,
        n,
    };
    dispatch(enc, &kernel, &params, &[gu, y], (gx, gy, 1));
    Ok(())
}

fn halves_source(kind: Kind) -> String {
    preprocess(
        &format!("{SRC}\n{ACT_FNS}\n{SOFTCAP_WGSL}"),
        &[kind.flag(), "HALVES", "UNARY"],
    )
}

/// Records `out = gelu_tanh(gate) · up` over `[rows][n]` into `enc` (Gemma's FFN). `out` may be
/// `gate`.
pub async fn encode_geglu(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    gate: &wgpu::Buffer,
    up: &wgpu::Buffer,
    out: &wgpu::Buffer,
    rows: u32,
    n: u32,
) -> Result<(), GpuError> {
    encode(gpu, enc, Kind::Geglu, gate, Some(up), out, rows, n, 0.0).await
}

/// Records `out = silu(gate) · up` over `[rows][n]` into `enc` (Llama's and Qwen's FFN). `out`
/// may be `gate`.
pub async fn encode_swiglu(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    gate: &wgpu::Buffer,
    up: &wgpu::Buffer,
    out: &wgpu::Buffer,
    rows: u32,
    n: u32,
) -> Result<(), GpuError> {
    encode(gpu, enc, Kind::Swiglu, gate, Some(up), out, rows, n, 0.0).await
}

/// Records `y = a + b` over `[rows][n]` into `enc`. `y` may be `a` or `b` (in place).
pub async fn encode_add(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
) -> Result<(), GpuError> {
    if a == b && y == a {
        // a + a = 2a exactly; one buffer cannot be bound read-only and read-write at once.
        return encode(gpu, enc, Kind::Scale, a, None, y, rows, n, 2.0).await;
    }
    if y == b {
        return encode(gpu, enc, Kind::Add, b, Some(a), y, rows, n, 0.0).await;
    }
    encode(gpu, enc, Kind::Add, a, Some(b), y, rows, n, 0.0).await
}

/// Records `y[r][i] = x[r][i] + bias[i]` over `[rows][n]` into `enc` (`bias` is `[n]`). `y`
/// may be `x`.
pub async fn encode_add_bias(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
) -> Result<(), GpuError> {
    encode(gpu, enc, Kind::AddBias, x, Some(bias), y, rows, n, 0.0).await
}

/// Records `y = x · s` over `[rows][n]` into `enc`. `y` may be `x`.
pub async fn encode_scale(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
    s: f32,
) -> Result<(), GpuError> {
    encode(gpu, enc, Kind::Scale, x, None, y, rows, n, s).await
}

/// Records `y = c · tanh(x / c)` over `[rows][n]` into `enc` (soft-capping). `y` may be `x`.
#[allow(clippy::too_many_arguments)]
pub async fn encode_softcap(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: u32,
    n: u32,
    c: f32,
) -> Result<(), GpuError> {
    if !(c.is_finite() && c > 0.0) {
        return Err(GpuError::BadSetting {
            name: "softcap".into(),
            value: c.to_string(),
            reason: "the cap must be finite and positive".into(),
        });
    }
    encode(gpu, enc, Kind::Softcap, x, None, y, rows, n, c).await
}

/// Uploads `a` (and `b`), runs one op over `[1][a.len()]` into a new buffer, reads it back.
async fn run(
    gpu: &Gpu,
    kind: Kind,
    a: &[f32],
    b: Option<&[f32]>,
    s: f32,
) -> Result<Vec<f32>, GpuError> {
    if let Some(b) = b {
        if b.len() != a.len() {
            return Err(shape_err(
                kind,
                format!("operands have {} and {} values", a.len(), b.len()),
            ));
        }
    }
    let n = u32::try_from(a.len())
        .map_err(|_| shape_err(kind, format!("{} values do not fit u32", a.len())))?;
    let ab = gpu.storage_from("act a", a);
    let bb = b.map(|b| gpu.storage_from("act b", b));
    let yb = gpu.storage("act y", a.len() as u64 * 4);
    let mut enc = Encoder::new(gpu);
    encode(gpu, &mut enc, kind, &ab, bb.as_ref(), &yb, 1, n, s).await?;
    enc.submit();
    gpu.read_f32(&yb, a.len()).await
}

/// Convenience for tests and tools: `c · tanh(x / c)` on the GPU.
pub async fn run_softcap(gpu: &Gpu, x: &[f32], c: f32) -> Result<Vec<f32>, GpuError> {
    run(gpu, Kind::Softcap, x, None, c).await
}

/// `c · tanh(x / c)` in f64.
pub fn softcap_ref(x: f32, c: f32) -> f64 {
    f64::from(c) * (f64::from(x) / f64::from(c)).tanh()
}

/// Convenience for tests and tools: `gelu_tanh(gate) · up` on the GPU.
pub async fn run_geglu(gpu: &Gpu, gate: &[f32], up: &[f32]) -> Result<Vec<f32>, GpuError> {
    run(gpu, Kind::Geglu, gate, Some(up), 0.0).await
}

/// Convenience for tests and tools: `silu(gate) · up` on the GPU.
pub async fn run_swiglu(gpu: &Gpu, gate: &[f32], up: &[f32]) -> Result<Vec<f32>, GpuError> {
    run(gpu, Kind::Swiglu, gate, Some(up), 0.0).await
}

/// Convenience for tests and tools: `a + b` on the GPU.
pub async fn run_add(gpu: &Gpu, a: &[f32], b: &[f32]) -> Result<Vec<f32>, GpuError> {
    run(gpu, Kind::Add, a, Some(b), 0.0).await
}

/// Convenience for tests and tools: `x[r][i] + bias[i]` over `[x.len() / bias.len()][bias.len()]`
/// on the GPU.
pub async fn run_add_bias(gpu: &Gpu, x: &[f32], bias: &[f32]) -> Result<Vec<f32>, GpuError> {
    let kind = Kind::AddBias;
    if bias.is_empty() || !x.len().is_multiple_of(bias.len()) {
        return Err(shape_err(
            kind,
            format!("x has {} values, not whole rows of {}", x.len(), bias.len()),
        ));
    }
    let too_big = |_| shape_err(kind, format!("{} values do not fit u32", x.len()));
    let n = u32::try_from(bias.len()).map_err(too_big)?;
    let rows = u32::try_from(x.len() / bias.len()).map_err(too_big)?;
    let xb = gpu.storage_from("add_bias x", x);
    let bb = gpu.storage_from("add_bias bias", bias);
    let yb = gpu.storage("add_bias y", x.len() as u64 * 4);
    let mut enc = Encoder::new(gpu);
    encode(gpu, &mut enc, kind, &xb, Some(&bb), &yb, rows, n, 0.0).await?;
    enc.submit();
    gpu.read_f32(&yb, x.len()).await
}

/// Convenience for tests and tools: `x · s` on the GPU.
pub async fn run_scale(gpu: &Gpu, x: &[f32], s: f32) -> Result<Vec<f32>, GpuError> {
    run(gpu, Kind::Scale, x, None, s).await
}

/// `gelu_tanh(x) = 0.5·x·(1 + tanh(a))`, `a = √(2/π)·(x + 0.044715·x³)`, in f64. For `a < 0`,
/// `1 + tanh(a)` is evaluated as `2·e^(2a) / (1 + e^(2a))` (the same number, without the
/// cancellation that turns f64's `1 + tanh(a)` into 0 from about `a < −19`).
pub fn gelu_tanh_ref(x: f64) -> f64 {
    let a = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    let one_plus_tanh = if a < 0.0 {
        let e = (2.0 * a).exp();
        2.0 * e / (1.0 + e)
    } else {
        1.0 + a.tanh()
    };
    0.5 * x * one_plus_tanh
}

/// `silu(x) = x / (1 + e^(−x))` in f64.
pub fn silu_ref(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// `gelu_tanh(gate) · up` in f64, element by element.
pub fn geglu_ref(gate: &[f32], up: &[f32]) -> Vec<f64> {
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| gelu_tanh_ref(f64::from(g)) * f64::from(u))
        .collect()
}

/// `silu(gate) · up` in f64, element by element.
pub fn swiglu_ref(gate: &[f32], up: &[f32]) -> Vec<f64> {
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| silu_ref(f64::from(g)) * f64::from(u))
        .collect()
}

/// `a + b` in f64 (exact for f32 inputs; rounded to f32 it is the correctly rounded f32 sum,
/// which the GPU must match bit for bit).
pub fn add_ref(a: &[f32], b: &[f32]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) + f64::from(y))
        .collect()
}

/// `x[r][i] + bias[i]` in f64 over whole rows of `bias.len()` (exact for f32 inputs, like
/// [`add_ref`]).
pub fn add_bias_ref(x: &[f32], bias: &[f32]) -> Vec<f64> {
    x.chunks_exact(bias.len().max(1))
        .flat_map(|row| add_ref(row, bias))
        .collect()
}

/// `x · s` in f64 (exact for f32 inputs; rounded to f32 it is what the GPU must give).
pub fn scale_ref(x: &[f32], s: f32) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v) * f64::from(s)).collect()
}

const U: f64 = 1.0 / 16_777_216.0;

/// Relative error bound of the GPU's `silu(a) · b` (u = 2⁻²⁴; WGSL `exp` is within 3 + 2|x| ULP,
/// one ULP ≤ 2u; division 2.5 ULP): `exp(−|a|)` (3 + 2|a|)·2u, `1 + e` u, the division 5u, the
/// products 2u. Plus an absolute `2⁻¹²⁶·|a·b|` where `exp` underflows.
pub fn swiglu_bound(a: f32, b: f32) -> (f64, f64) {
    let a = f64::from(a).abs();
    let rel = (3.0 + 2.0 * a) * 2.0 * U + 8.0 * U;
    (rel, f64::from(f32::MIN_POSITIVE) * a * f64::from(b).abs())
}

/// Error bound of the GPU's `gelu_tanh(a) · b`: `(relative, absolute)`. The argument
/// `z = 2√(2/π)(c + 0.044715c³)` (c = a clamped to ±9) carries ≤ 6u relative error (no
/// cancellation: c and c³ have one sign), which moves σ(z) by ≤ 6u·|z| relative; then as for
/// silu with |z| in place of |a|. Absolute: below a = −9 the kernel returns gelu(−9)·b, within
/// 1.4·10⁻²⁸·|b| of the true value (see the shader), and `2⁻¹²⁶·|b|` for an underflowing product.
pub fn geglu_bound(a: f32, b: f32) -> (f64, f64) {
    let c = f64::from(a).clamp(-9.0, 9.0);
    let z = (2.0 * (2.0 / std::f64::consts::PI).sqrt() * (c + 0.044715 * c * c * c)).abs();
    let rel = 6.0 * U * z + (3.0 + 2.0 * z) * 2.0 * U + 8.0 * U;
    let clamp = if a < -9.0 { 1.4e-28 } else { 0.0 };
    let abs = (clamp + f64::from(f32::MIN_POSITIVE)) * f64::from(b).abs();
    (rel, abs)
}

/// Parses and validates `src` with naga as `gpu.kernel` would compile it at `tier` (tests only).
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) fn validate_wgsl(label: &str, tier: crate::gpu::Tier, src: &str) {
    use wgpu::naga;
    let src = if tier >= crate::gpu::Tier::T1 {
        format!("enable f16;\n{src}")
    } else {
        src.to_string()
    };
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{label} {tier:?}: {}", e.emit_to_string(&src)));
    let caps = naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
        | naga::valid::Capabilities::SUBGROUP;
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
    v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
    if let Err(e) = v.validate(&module) {
        panic!("{label} {tier:?}: {}", e.emit_to_string(&src));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::Tier;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for kind in [
                Kind::Geglu,
                Kind::Swiglu,
                Kind::Add,
                Kind::AddBias,
                Kind::Scale,
                Kind::Softcap,
            ] {
                for inplace in [false, true] {
                    validate_wgsl(
                        &format!("{} inplace={inplace}", kind.name()),
                        tier,
                        &source(kind, inplace),
                    );
                }
                if matches!(kind, Kind::Geglu | Kind::Swiglu) {
                    validate_wgsl(
                        &format!("{} halves", kind.name()),
                        tier,
                        &halves_source(kind),
                    );
                }
            }
        }
    }

    #[test]
    fn references() {
        assert!((gelu_tanh_ref(1.0) - 0.841_191_990_608_276_8).abs() < 1e-15);
        assert!((silu_ref(1.0) - 0.731_058_578_630_004_9).abs() < 1e-15);
        assert_eq!(gelu_tanh_ref(0.0), 0.0);
    }
}
