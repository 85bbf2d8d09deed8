//! Y = W·X on the GPU (the prefill path): `W` is rows × k in block format, `X` holds `cols`
//! columns of k values each (column-major: one token's activations are contiguous), and `Y`
//! holds `cols` columns of `rows` values.

use super::{check_binding, check_kernel_shape, key, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight, KernelFamily, Op};

/// Columns each invocation of the row kernel handles (`COLS` in `shaders/matmul_row.wgsl`).
pub const MATMUL_COLS_PER_INVOCATION: u32 = 8;

/// Up to this many columns the row family runs the few-column kernel
/// (`shaders/matmul_few.wgsl`: each block dequantized once for every column, 2 rows per
/// invocation).
pub const MAX_FEW_COLS: u32 = 8;

/// The few-column kernel's column counts, one pipeline each (all compiled when a model loads):
/// n columns run the smallest that holds them, the rest repeating the last column unwritten.
pub const FEW_COLS: [u32; 5] = [2, 3, 4, 6, MAX_FEW_COLS];

/// The few-column pipeline that takes `cols` columns, if one does.
pub fn few_cols(cols: u32) -> Option<u32> {
    FEW_COLS.into_iter().find(|&c| c >= cols)
}

/// Whether `cols` columns run the few-column kernel on `gpu`: in the row prefill family, where
/// 8 lanes share x's loads (lavapipe). SwiftShader (4 lanes) measured it slower than the prefill
/// kernel (Gemma 3's 8-token prefill 5.4 against 6.6 tok/s), and it would add 2.6 s of compiling
/// to every load there.
pub fn uses_few_cols(gpu: &Gpu, cols: u32) -> bool {
    gpu.caps.prefill_family == KernelFamily::Row
        && gpu.caps.share_x() >= 8
        && few_cols(cols).is_some()
}

/// Rows per workgroup of the few-column kernel: 16 invocations × 2 rows.
const FEW_ROWS_PER_GROUP: u32 = 32;

/// Rows per workgroup of the row kernel: 16 invocations × `MM_ROWS` (4) rows each.
const MATMUL_ROWS_PER_GROUP: u32 = 64;

/// Records Y = W·X for every chunk of `w` into `enc`, with the kernel family of `gpu`.
pub async fn encode(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: u32,
) -> Result<(), GpuError> {
    encode_range(gpu, enc, w, None, x, y, cols).await
}

/// Records Y = W[first_row..first_row + rows]·X: one part of a weight that concatenates several
/// matrices by rows (q, k and v), into its own Y (`rows` per column). `w` must be one binding.
pub async fn encode_rows(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    (first_row, rows): (u32, u32),
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: u32,
) -> Result<(), GpuError> {
    encode_range(gpu, enc, w, Some((first_row, rows)), x, y, cols).await
}

async fn encode_range(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    range: Option<(u32, u32)>,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: u32,
) -> Result<(), GpuError> {
    check_kernel_shape(w)?;
    // (buffer, rows, first row in the buffer, first row in Y) per dispatch; Y's column stride.
    let (parts, y_rows) = match range {
        None => (
            w.chunks
                .iter()
                .map(|c| (&c.store, c.rows, 0, c.first_row))
                .collect::<Vec<_>>(),
            w.rows,
        ),
        Some((first, rows)) => {
            let [chunk] = w.chunks.as_slice() else {
                return Err(GpuError::Shape {
                    tensor: w.name.clone(),
                    detail: "a row range of a weight split over several bindings".into(),
                });
            };
            if first.checked_add(rows).is_none_or(|end| end > w.rows) {
                return Err(GpuError::Shape {
                    tensor: w.name.clone(),
                    detail: format!("rows {first}..+{rows} of its {} rows", w.rows),
                });
            }
            (vec![(&chunk.store, rows, first, 0)], rows)
        }
    };
    let x_bytes = u64::from(w.row_len) * u64::from(cols) * 4;
    let y_bytes = u64::from(y_rows) * u64::from(cols) * 4;
    check_binding(gpu, "matmul X", x_bytes)?;
    check_binding(gpu, "matmul Y", y_bytes)?;
    if x.size() < x_bytes || y.size() < y_bytes {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "W is {y_rows}×{} and X has {cols} columns, but X holds {} and Y {} values",
                w.row_len,
                x.size() / 4,
                y.size() / 4
            ),
        });
    }
    if cols == 0 {
        return Ok(());
    }
    let op = match gpu.caps.prefill_family {
        KernelFamily::Row if uses_few_cols(gpu, cols) => Op::MatmulFew,
        KernelFamily::Row => Op::MatmulRow,
        KernelFamily::Workgroup => Op::MatmulTiled,
    };
    let lanes = match op {
        Op::MatmulFew => few_cols(cols).unwrap_or(MAX_FEW_COLS),
        _ => 0,
    };
    let kernel = gpu.pipeline(key(gpu, op, w, lanes)).await?;
    for (buffer, rows, row0, y_offset) in parts {
        let params = Params {
            rows,
            k: w.row_len,
            row_bytes: w.row_bytes as u32,
            cols,
            y_offset,
            y_stride: y_rows,
            row0,
            ..Params::default()
        };
        let bindings = [(2, x), (3, y)];
        // Tiled: 64 rows × 32 columns per workgroup; row family: 16 invocations × 4 rows, × COLS
        // columns, or (up to MAX_FEW_COLS columns) 16 invocations × 2 rows × every column.
        let (rows_per_group, cols_per_group) = match op {
            Op::MatmulTiled => (MATMUL_ROWS_PER_GROUP, 32),
            Op::MatmulFew => (FEW_ROWS_PER_GROUP, lanes),
            _ => (MATMUL_ROWS_PER_GROUP, MATMUL_COLS_PER_INVOCATION),
        };
        let groups = (rows.div_ceil(rows_per_group), cols.div_ceil(cols_per_group));
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
        record(enc, &kernel, params, buffer, &bindings, groups);
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
