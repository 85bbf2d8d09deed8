//! y = W·x on the GPU (the decode path): `W` is rows × k in block format, `x` has k values.
//!
//! Two precisions. `exact` dequantizes each weight to f32 and multiplies with f32 x: the
//! goldens hold it. `fast` first quantizes x to 8 bits per 32 values ([`encode_quantize_x8`],
//! as ggml's q8_1), then takes integer dot products of the weights' quants with x's, four at a
//! time (`dot4I8Packed`), scaling once per 32 values: the arithmetic llama.cpp's own quantized
//! matvec does. Formats without an integer kernel ([`GgmlType::has_x8_kernel`]) run exactly
//! at either precision.

use super::{check_binding, check_kernel_shape, dispatch, grid, key, record, Params};
use crate::gpu::{Bind, Encoder, KernelSpec, PipelineKey};
use crate::gpu::{Gpu, GpuError, GpuWeight, KernelFamily, Op, Tier};
use crate::quant::GgmlType;

/// How decode multiplies weights with activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 activations times exactly dequantized weights (the default; the goldens hold it).
    #[default]
    Exact,
    /// Activations quantized to 8 bits per 32 values, integer dot products.
    Fast,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Fast => "fast",
        }
    }

    /// `exact` or `fast`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "exact" => Some(Precision::Exact),
            "fast" => Some(Precision::Fast),
            _ => None,
        }
    }
}

/// The quantization of one 32-value piece (`quantize_piece`), shared by every kernel that
/// quantizes x for `fast` precision.
pub(crate) const X8_PIECE: &str = include_str!("../../shaders/x8_piece.wgsl");

/// x quantized for the `fast` kernels: `q` holds 32 signed bytes per 32-value piece (8 u32),
/// `s` per piece (d, d·Σq[0..16), d·Σq[16..32), d·Σq) as f32.
pub struct X8 {
    pub q: wgpu::Buffer,
    pub s: wgpu::Buffer,
    /// Values it can hold (a multiple of 32).
    pub capacity: u32,
}

impl X8 {
    /// Buffers for vectors of up to `k` values (rounded up to a multiple of 32).
    pub fn new(gpu: &Gpu, k: u32) -> X8 {
        let pieces = u64::from(k.div_ceil(32).max(1));
        X8 {
            q: gpu.storage("x8 quants", pieces * 32),
            s: gpu.storage("x8 scales", pieces * 16),
            capacity: (pieces * 32) as u32,
        }
    }
}

/// What a matvec multiplies: f32 x, or at `fast` precision x and its 8-bit quantization (the
/// f32 x serves formats without an integer kernel).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    F32(&'a wgpu::Buffer),
    X8 { x: &'a wgpu::Buffer, q: &'a X8 },
}

impl<'a> Input<'a> {
    /// The f32 x.
    pub fn f32(&self) -> &'a wgpu::Buffer {
        match *self {
            Input::F32(x) | Input::X8 { x, .. } => x,
        }
    }

    /// The quantized x when `ty` has an integer kernel.
    fn x8_for(&self, ty: GgmlType) -> Option<&'a X8> {
        match *self {
            Input::X8 { q, .. } if ty.has_x8_kernel() => Some(q),
            _ => None,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct QuantParams {
    pieces: u32,
    grid_x: u32,
    _pad: [u32; 2],
}

/// Records the 8-bit quantization of the first `k` values of `x` (k a multiple of 32) into `q`.
pub async fn encode_quantize_x8(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    x: &wgpu::Buffer,
    k: u32,
    q: &X8,
) -> Result<(), GpuError> {
    if k == 0 || !k.is_multiple_of(32) || k > q.capacity || x.size() < u64::from(k) * 4 {
        return Err(GpuError::Shape {
            tensor: "x8 quantization".into(),
            detail: format!(
                "k = {k} must be a positive multiple of 32 within x ({} values) and the x8 \
                 buffers ({} values)",
                x.size() / 4,
                q.capacity
            ),
        });
    }
    check_binding(gpu, "x8 quantization x", x.size())?;
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "quantize_x8",
            variant: 0,
            source: &|_| {
                format!(
                    "{}\n{X8_PIECE}",
                    include_str!("../../shaders/quantize_x8.wgsl")
                )
            },
            bindings: &[Bind::Uniform, Bind::Read, Bind::ReadWrite, Bind::ReadWrite],
            constants: &[],
        })
        .await?;
    let pieces = k / 32;
    let (gx, gy) = grid(gpu, pieces.div_ceil(64));
    let params = QuantParams {
        pieces,
        grid_x: gx,
        _pad: [0; 2],
    };
    dispatch(enc, &kernel, &params, &[x, &q.q, &q.s], (gx, gy, 1));
    Ok(())
}

/// Invocations per workgroup of the row kernels (`shaders/matvec_row.wgsl`). Small, because a
/// software adapter runs one workgroup per thread and needs only (SIMD width × threads)
/// invocations in all: a small workgroup lets it spread a small matrix over every core.
pub const ROW_GROUP: u32 = 16;

/// Rows each invocation of the row kernel handles (`ROWS` in `shaders/matvec_row.wgsl`) for
/// dispatches of up to `rows` rows of `w`: as many as possible up to a cap, while the dispatch
/// keeps at least `ROW_INVOCATIONS` invocations.
///
/// In GGUF's row order the cap is 32: on Mesa 22.3's lavapipe every load is a per-lane loop of
/// scalar loads, so x (32 words per 32 values at `exact`) costs as much as the weights unless
/// many rows share it. With rows interleaved by eight (`gpu::ROWS8`, the row family's layout)
/// the lanes of a subgroup read adjacent blocks and x arrives by subgroup broadcasts, and fewer
/// rows per lane measured faster on Mesa 25's lavapipe (`wisp bench-kernels`, three interleaved
/// rounds of caps 2, 4, 8 and 16, best of each, % of the read roofline): at `exact` 2 rows
/// (Q8_0 45 against 34–39 with more; Q5_0 30 against 23–25; Q4_K 27 against 19–22; Q6_K 36
/// against 25–27), at `fast` 2 as well (Q5_0 36, Q4_K 31, Q6_K 37, against at most 30) except
/// for Q8_0, whose integer dot products are cheap enough that 8 rows sharing x win (41–44
/// against 28).
pub fn rows_per_invocation(rows: u32, w: &GpuWeight, fast: bool) -> u32 {
    // ROWS_RULE below says this in words: change both together.
    let mut r: u32 = match (w.rows8, fast && w.ty == GgmlType::Q8_0) {
        (false, _) => 32,
        (true, true) => 8,
        (true, false) => 2,
    };
    while r > 1 && rows / r < ROW_INVOCATIONS {
        r /= 2;
    }
    r
}

/// [`rows_per_invocation`]'s rule, hashed with the kernels' sources (`gpu::kernels_hash`), so
/// that kernel-family choices measured under another rule are measured again.
pub const ROWS_RULE: &str = "rows per invocation: GGUF order 32; rows8 2, Q8_0 at fast 8; \
    at least 128 invocations";

/// The fewest invocations a row-kernel dispatch is given (see [`rows_per_invocation`]).
const ROW_INVOCATIONS: u32 = 128;

/// Lanes per row for the cooperative kernel: enough to cover the row's 32-element pieces, at most
/// 64, and in T2 no more than the smallest subgroup so a row reduces inside one subgroup.
pub fn lanes_for(gpu: &Gpu, k: u32) -> u32 {
    let pieces = (k / 32).max(1).next_power_of_two();
    let mut lanes = pieces.min(64);
    if gpu.caps.tier >= Tier::T2 {
        lanes = lanes.min(gpu.caps.subgroup_min_size.max(1));
    }
    lanes
}

/// Records y[0..rows) = W·x for every chunk of `w` into `enc`, with the kernel family of `gpu`.
pub async fn encode(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    encode_input(gpu, enc, w, Input::F32(x), y).await
}

/// The f32 x and, where `w`'s format has an integer kernel, the quantized x (which must cover a
/// row of `w`), after checking that `w` can run in the kernels.
fn checked_input<'a>(
    w: &GpuWeight,
    input: Input<'a>,
) -> Result<(&'a wgpu::Buffer, Option<&'a X8>), GpuError> {
    check_kernel_shape(w)?;
    let x8 = input.x8_for(w.ty);
    if let Some(q) = x8 {
        if q.capacity < w.row_len {
            return Err(GpuError::Shape {
                tensor: w.name.clone(),
                detail: format!(
                    "rows have {} values but the quantized x holds {}",
                    w.row_len, q.capacity
                ),
            });
        }
    }
    Ok((input.f32(), x8))
}

/// A matvec's bindings: W, x (its quants and scales in the x8 kernels), y.
fn bindings<'a>(
    x: &'a wgpu::Buffer,
    x8: Option<&'a X8>,
    y: &'a wgpu::Buffer,
) -> Vec<(u32, &'a wgpu::Buffer)> {
    match x8 {
        Some(q) => vec![(2, &q.q), (3, y), (6, &q.s)],
        None => vec![(2, x), (3, y)],
    }
}

/// The plain matvec kernel of `gpu`'s family for dispatches of up to `rows` rows of `k` values:
/// (op, its `lanes` key: rows per invocation or lanes per row, rows per workgroup).
fn plain_kernel(gpu: &Gpu, w: &GpuWeight, rows: u32, fast: bool) -> (Op, u32, u32) {
    match gpu.caps.family {
        KernelFamily::Row => {
            let r = rows_per_invocation(rows, w, fast);
            let op = if fast { Op::MatvecRowX8 } else { Op::MatvecRow };
            (op, r, ROW_GROUP * r)
        }
        KernelFamily::Workgroup => {
            let lanes = lanes_for(gpu, w.row_len);
            let op = if fast { Op::MatvecWgX8 } else { Op::MatvecWg };
            (op, lanes, 64 / lanes)
        }
    }
}

/// [`encode`] with x given as an [`Input`]: the x8 kernels where x is quantized and the
/// format has one.
pub async fn encode_input(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    input: Input<'_>,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let (x, x8) = checked_input(w, input)?;
    check_binding(gpu, "matvec x", u64::from(w.row_len) * 4)?;
    check_binding(gpu, "matvec y", u64::from(w.rows) * 4)?;
    if x.size() < u64::from(w.row_len) * 4 || y.size() < u64::from(w.rows) * 4 {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "W is {}×{} but x has {} and y has {} values",
                w.rows,
                w.row_len,
                x.size() / 4,
                y.size() / 4
            ),
        });
    }
    let max_rows = w.chunks.iter().map(|c| c.rows).max().unwrap_or(1);
    let (op, lanes, rows_per_group) = plain_kernel(gpu, w, max_rows, x8.is_some());
    let kernel = gpu.pipeline(key(gpu, op, w, lanes)).await?;
    for chunk in &w.chunks {
        let (gx, gy) = grid(gpu, chunk.rows.div_ceil(rows_per_group));
        let params = Params {
            rows: chunk.rows,
            k: w.row_len,
            row_bytes: w.row_bytes as u32,
            cols: 1,
            y_offset: chunk.first_row,
            y_stride: w.rows,
            grid_x: gx,
            ..Params::default()
        };
        record(
            enc,
            &kernel,
            params,
            &chunk.store,
            &bindings(x, x8, y),
            (gx, gy),
        );
    }
    Ok(())
}

/// Records `y[r] = act(W[r]·x) · (W[r + n]·x)` for `r < n`, `W` a fused gate+up weight of `2n`
/// rows in one binding (`n` gate rows, then `n` up rows): the FFN's two projections and its
/// gated unit in one dispatch, GeGLU (`gelu`) or SwiGLU. `Ok(false)` (nothing recorded) when
/// `W` is split over several bindings: the caller then runs [`encode`] and the activation.
pub async fn encode_glu(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    input: Input<'_>,
    y: &wgpu::Buffer,
    gelu: bool,
) -> Result<bool, GpuError> {
    let (x, x8) = checked_input(w, input)?;
    let [chunk] = w.chunks.as_slice() else {
        return Ok(false);
    };
    if !w.rows.is_multiple_of(2) {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!("a gate+up weight needs an even row count, not {}", w.rows),
        });
    }
    let n = w.rows / 2;
    // The kernel finds up row r at gate row r's address plus n rows' bytes; with rows
    // interleaved by eight that holds where n is a multiple of 8 (every model's FFN width).
    if w.rows8 && !n.is_multiple_of(8) {
        return Ok(false);
    }
    if x.size() < u64::from(w.row_len) * 4 || y.size() < u64::from(n) * 4 {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "W is 2·{n}×{} but x has {} and y has {} values",
                w.row_len,
                x.size() / 4,
                y.size() / 4
            ),
        });
    }
    check_binding(gpu, "matvec x", x.size())?;
    check_binding(gpu, "matvec y", y.size())?;
    let (op, lanes, rows_per_group) = match gpu.caps.family {
        KernelFamily::Row => {
            let op = match (x8.is_some(), gelu) {
                (false, true) => Op::MatvecRowGeglu,
                (false, false) => Op::MatvecRowSwiglu,
                (true, true) => Op::MatvecRowX8Geglu,
                (true, false) => Op::MatvecRowX8Swiglu,
            };
            let r = rows_per_invocation(n, w, x8.is_some());
            (op, r, ROW_GROUP * r)
        }
        KernelFamily::Workgroup => {
            let op = match (x8.is_some(), gelu) {
                (false, true) => Op::MatvecWgGeglu,
                (false, false) => Op::MatvecWgSwiglu,
                (true, true) => Op::MatvecWgX8Geglu,
                (true, false) => Op::MatvecWgX8Swiglu,
            };
            let lanes = lanes_for(gpu, w.row_len);
            (op, lanes, 64 / lanes)
        }
    };
    let kernel = gpu.pipeline(key(gpu, op, w, lanes)).await?;
    let (gx, gy) = grid(gpu, n.div_ceil(rows_per_group));
    let params = Params {
        rows: n,
        k: w.row_len,
        row_bytes: w.row_bytes as u32,
        cols: 1,
        y_stride: n,
        grid_x: gx,
        ..Params::default()
    };
    record(
        enc,
        &kernel,
        params,
        &chunk.store,
        &bindings(x, x8, y),
        (gx, gy),
    );
    Ok(true)
}

/// Records `W·x` for a weight that concatenates three matrices by rows (q, k and v of an
/// attention layer), in one dispatch that writes each part's rows to its own output from index
/// 0: `ys[i]` gets `rows[i]` values. `Ok(false)` (nothing recorded) when `W` is split over
/// several bindings; the caller then runs each part on its own.
pub async fn encode_split(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    input: Input<'_>,
    ys: [&wgpu::Buffer; 3],
    rows: [u32; 3],
) -> Result<bool, GpuError> {
    let (x, x8) = checked_input(w, input)?;
    let [chunk] = w.chunks.as_slice() else {
        return Ok(false);
    };
    let total: u64 = rows.iter().map(|&r| u64::from(r)).sum();
    if total != u64::from(w.rows) || rows.contains(&0) {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!("parts of {rows:?} rows do not make its {} rows", w.rows),
        });
    }
    let short = ys
        .iter()
        .zip(rows)
        .any(|(y, r)| y.size() < u64::from(r) * 4);
    if x.size() < u64::from(w.row_len) * 4 || short {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "W is {}×{} in parts of {rows:?} rows but x has {} values and the outputs \
                 {:?}",
                w.rows,
                w.row_len,
                x.size() / 4,
                ys.map(|y| y.size() / 4)
            ),
        });
    }
    check_binding(gpu, "matvec x", x.size())?;
    for y in ys {
        check_binding(gpu, "matvec y", y.size())?;
    }
    let (op, lanes, rows_per_group) = plain_kernel(gpu, w, w.rows, x8.is_some());
    let kernel = gpu
        .pipeline(PipelineKey {
            split: true,
            ..key(gpu, op, w, lanes)
        })
        .await?;
    let (gx, gy) = grid(gpu, w.rows.div_ceil(rows_per_group));
    let params = Params {
        rows: w.rows,
        k: w.row_len,
        row_bytes: w.row_bytes as u32,
        cols: 1,
        y_stride: w.rows,
        grid_x: gx,
        split1: rows[0],
        split2: rows[0] + rows[1],
        ..Params::default()
    };
    let mut b = bindings(x, x8, ys[0]);
    b.extend([(7, ys[1]), (8, ys[2])]);
    record(enc, &kernel, params, &chunk.store, &b, (gx, gy));
    Ok(true)
}

/// Convenience for tests and tools: uploads `x`, quantizes it to 8 bits, runs the `fast`
/// matvec (exact for formats without an integer kernel), reads y back.
pub async fn run_fast(gpu: &Gpu, w: &GpuWeight, x: &[f32]) -> Result<Vec<f32>, GpuError> {
    let xb = gpu.storage_from("x", x);
    let q = X8::new(gpu, w.row_len);
    let yb = gpu.storage("y", u64::from(w.rows) * 4);
    let mut enc = Encoder::new(gpu);
    encode_quantize_x8(gpu, &mut enc, &xb, w.row_len, &q).await?;
    encode_input(gpu, &mut enc, w, Input::X8 { x: &xb, q: &q }, &yb).await?;
    enc.submit();
    gpu.read_f32(&yb, w.rows as usize).await
}

/// Convenience for tests and tools: uploads `x`, runs the matvec, reads y back.
pub async fn run(gpu: &Gpu, w: &GpuWeight, x: &[f32]) -> Result<Vec<f32>, GpuError> {
    let xb = gpu.storage_from("x", x);
    let yb = gpu.storage("y", u64::from(w.rows) * 4);
    let mut enc = Encoder::new(gpu);
    encode(gpu, &mut enc, w, &xb, &yb).await?;
    enc.submit();
    gpu.read_f32(&yb, w.rows as usize).await
}
