//! Embedding lookup on the GPU: rows of a block-format weight picked by token ids, as f32.

use super::{check_kernel_shape, grid, key, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, GpuWeight, Op};

/// Records Y[t] = row `ids[t]` of `w` (dequantized) for `n_tokens` ids, into `y`
/// (`n_tokens × row_len` f32). Ids must be below `w.rows`: callers validate them (the shader
/// leaves the output of an out-of-range id untouched rather than reading out of bounds).
pub async fn encode_get_rows(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    w: &GpuWeight,
    ids: &wgpu::Buffer,
    n_tokens: u32,
    y: &wgpu::Buffer,
) -> Result<(), GpuError> {
    check_kernel_shape(w)?;
    let out = u64::from(n_tokens) * u64::from(w.row_len) * 4;
    if ids.size() < u64::from(n_tokens) * 4 || y.size() < out {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!(
                "get_rows of {n_tokens} ids needs {} id bytes and {out} output bytes, have {} and {}",
                u64::from(n_tokens) * 4,
                ids.size(),
                y.size()
            ),
        });
    }
    super::check_binding(gpu, "get_rows output", out)?;
    if n_tokens == 0 {
        return Ok(());
    }
    let kernel = gpu.pipeline(key(gpu, Op::GetRows, w, 0)).await?;
    let pieces = u64::from(n_tokens) * u64::from(w.row_len / 32);
    let groups = u32::try_from(pieces.div_ceil(64)).map_err(|_| GpuError::Shape {
        tensor: w.name.clone(),
        detail: "too many tokens for one dispatch".into(),
    })?;
    let (gx, gy) = grid(gpu, groups);
    for chunk in &w.chunks {
        let params = Params {
            rows: chunk.rows,
            k: w.row_len,
            row_bytes: w.row_bytes as u32,
            cols: n_tokens,
            grid_x: gx,
            row0: chunk.first_row,
            ..Params::default()
        };
        let bindings = [(2, ids), (3, y)];
        record(enc, &kernel, params, &chunk.store, &bindings, (gx, gy));
    }
    Ok(())
}

/// Convenience for tests and tools: looks up `ids` (validated against `w.rows`) and reads back.
pub async fn run_get_rows(gpu: &Gpu, w: &GpuWeight, ids: &[u32]) -> Result<Vec<f32>, GpuError> {
    if let Some(&bad) = ids.iter().find(|&&i| i >= w.rows) {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!("token id {bad} is not below the {} rows", w.rows),
        });
    }
    let size = (ids.len() as u64 * 4).max(4);
    gpu.count_buffer(size);
    let idb = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("ids"),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&idb, 0, bytemuck::cast_slice(ids));
    let n = ids.len() as u32;
    let yb = gpu.storage("rows", u64::from(n) * u64::from(w.row_len) * 4);
    let mut enc = Encoder::new(gpu);
    encode_get_rows(gpu, &mut enc, w, &idb, n, &yb).await?;
    enc.submit();
    gpu.read_f32(&yb, n as usize * w.row_len as usize).await
}
