//! Y = W·X on the GPU (the prefill path): `W` is rows × k in block format, `X` holds `cols`
//! columns of k values each (column-major: one token's activations are contiguous), and `Y`
//! holds `cols` columns of `rows` values.

use super::{check_binding, check_kernel_shape, key, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight, KernelFamily, Op};

/// Columns each invocation of the row kernel handles (`COLS` in `shaders/matmul_row.wgsl`).
pub const MATMUL_COLS_PER_INVOCATION: u32 = 4;

/// Records Y = W·X for every chunk of `w` into `enc`, with the kernel family of `gpu`.
pub async fn encode(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: u32,
) -> Result<(), GpuError> {
    check_kernel_shape(w)?;
    let x_bytes = u64::from(w.row_len) * u64::from(cols) * 4;
    let y_bytes = u64::from(w.rows) * u64::from(cols) * 4;
    check_binding(gpu, "matmul X", x_bytes)?;
    check_binding(gpu, "matmul Y", y_bytes)?;
    if x.size() < x_bytes || y.size() < y_bytes {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "W is {}×{} and X has {cols} columns, but X holds {} and Y {} values",
                w.rows,
                w.row_len,
                x.size() / 4,
                y.size() / 4
            ),
        });
    }
    if cols == 0 {
        return Ok(());
    }
    let op = match gpu.caps.family {
        KernelFamily::Row => Op::MatmulRow,
        KernelFamily::Workgroup => Op::MatmulTiled,
    };
    let kernel = gpu.pipeline(key(gpu, op, w, 0)).await?;
    for chunk in &w.chunks {
        let params = Params {
            rows: chunk.rows,
            k: w.row_len,
            row_bytes: w.row_bytes as u32,
            cols,
            y_offset: chunk.first_row,
            y_stride: w.rows,
            ..Params::default()
        };
        let bindings = [(1, &chunk.buffer), (2, x), (3, y)];
        // Tiled: 64 rows × 32 columns per workgroup; row family: 64 rows × COLS columns.
        let cols_per_group = if op == Op::MatmulTiled {
            32
        } else {
            MATMUL_COLS_PER_INVOCATION
        };
        let groups = (chunk.rows.div_ceil(64), cols.div_ceil(cols_per_group));
        if groups.0 > gpu.caps.max_workgroups_per_dim || groups.1 > gpu.caps.max_workgroups_per_dim
        {
            return Err(GpuError::Shape {
                tensor: w.name.clone(),
                detail: "too many rows or columns for one dispatch".into(),
            });
        }
        let params = Params {
            grid_x: groups.0,
            ..params
        };
        record(enc, &kernel, params, &bindings, groups);
    }
    Ok(())
}

/// Convenience for tests and tools: uploads X (`cols` columns of k), runs, reads Y back.
pub async fn run(gpu: &Gpu, w: &GpuWeight, x: &[f32], cols: u32) -> Result<Vec<f32>, GpuError> {
    let xb = gpu.storage_from("X", x);
    let yb = gpu.storage("Y", u64::from(w.rows) * u64::from(cols) * 4);
    let mut enc = Encoder::new(gpu);
    encode(gpu, &mut enc, w, &xb, &yb, cols).await?;
    enc.submit();
    gpu.read_f32(&yb, w.rows as usize * cols as usize).await
}
