//! y = W·x on the GPU (the decode path): `W` is rows × k in block format, `x` has k values.

use super::{check_binding, check_kernel_shape, grid, key, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight, KernelFamily, Op, Tier};

/// Rows each invocation of the row kernel handles (`ROWS` in `shaders/matvec_row.wgsl`): 16 for
/// large matrices (x is loaded once per 16 rows), fewer for small ones, so that a software
/// adapter still has a few hundred invocations to spread over its cores.
pub fn rows_per_invocation(rows: u32) -> u32 {
    match rows {
        r if r >= 16 * 1024 => 16,
        r if r >= 2048 => 4,
        _ => 1,
    }
}

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
    check_kernel_shape(w)?;
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
    let (op, lanes, rows_per_group) = match gpu.caps.family {
        KernelFamily::Row => {
            let r = rows_per_invocation(w.chunks.iter().map(|c| c.rows).max().unwrap_or(1));
            (Op::MatvecRow, r, 64 * r)
        }
        KernelFamily::Workgroup => {
            let lanes = lanes_for(gpu, w.row_len);
            (Op::MatvecWg, lanes, 64 / lanes)
        }
    };
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
        let bindings = [(1, &chunk.buffer), (2, x), (3, y)];
        record(enc, &kernel, params, &bindings, (gx, gy));
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
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    gelu: bool,
) -> Result<bool, GpuError> {
    check_kernel_shape(w)?;
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
    let (op, lanes, rows_per_group) = match (gpu.caps.family, gelu) {
        (KernelFamily::Row, g) => {
            let r = rows_per_invocation(n);
            let op = if g {
                Op::MatvecRowGeglu
            } else {
                Op::MatvecRowSwiglu
            };
            (op, r, 64 * r)
        }
        (KernelFamily::Workgroup, g) => {
            let lanes = lanes_for(gpu, w.row_len);
            let op = if g {
                Op::MatvecWgGeglu
            } else {
                Op::MatvecWgSwiglu
            };
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
    let bindings = [(1, &chunk.buffer), (2, x), (3, y)];
    record(enc, &kernel, params, &bindings, (gx, gy));
    Ok(true)
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
