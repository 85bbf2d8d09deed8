//! Dequantize a weight on the GPU to f32, chunk by chunk, in GGUF element order.

use super::{grid, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight, Op};

/// Dequantizes `w` on the GPU, handing rows `[first_row, first_row + n)` to `sink` as they are
/// read back, so a tensor whose f32 form exceeds memory or a binding streams through.
pub async fn dequantize_each(
    gpu: &Gpu,
    w: &GpuWeight,
    mut sink: impl FnMut(u32, &[f32]) -> Result<(), GpuError>,
) -> Result<(), GpuError> {
    if w.rows == 0 || w.row_len == 0 {
        return Ok(());
    }
    // Float tensors need not be a multiple of 32 long: a single flat row with a cut tail.
    let flat = !w.row_len.is_multiple_of(32);
    if flat
        && w.ty
            .geometry()
            .is_none_or(|g| g.block_elems != 1 || w.rows != 1)
    {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!("row length {} is not a multiple of 32", w.row_len),
        });
    }
    let kernel = gpu.pipeline(super::key(gpu, Op::Dequant, w, 0)).await?;
    let out_row = u64::from(w.row_len) * 4;
    let rows_per = GpuWeight::rows_per_chunk(gpu, &w.name, 0, out_row)?;
    for chunk in &w.chunks {
        let mut r = 0u32;
        while r < chunk.rows {
            let n = (u64::from(chunk.rows - r)).min(rows_per) as u32;
            let n_out = u64::from(n) * u64::from(w.row_len);
            let out = gpu.storage("dequant out", n_out * 4);
            let pieces = u64::from(n) * u64::from(w.row_len.div_ceil(32));
            let groups = u32::try_from(pieces.div_ceil(64)).map_err(|_| GpuError::Shape {
                tensor: w.name.clone(),
                detail: "too many rows for one dispatch".into(),
            })?;
            let (gx, gy) = grid(gpu, groups);
            let params = Params {
                rows: n,
                k: w.row_len,
                row_bytes: w.row_bytes as u32,
                grid_x: gx,
                n_out: n_out as u32,
                row0: r,
                ..Params::default()
            };
            let mut enc = Encoder::new(gpu);
            record(
                &mut enc,
                &kernel,
                params,
                &chunk.store,
                &[(3, &out)],
                (gx, gy),
            );
            enc.submit();
            let vals = gpu.read_f32(&out, n_out as usize).await?;
            sink(chunk.first_row + r, &vals)?;
            r += n;
        }
    }
    Ok(())
}

/// Dequantizes all of `w` on the GPU into one vector (rows × row_len values).
pub async fn dequantize(gpu: &Gpu, w: &GpuWeight) -> Result<Vec<f32>, GpuError> {
    let mut out = Vec::with_capacity(w.rows as usize * w.row_len as usize);
    dequantize_each(gpu, w, |_, v| {
        out.extend_from_slice(v);
        Ok(())
    })
    .await?;
    Ok(out)
}
