//! GPU ops on weights in raw GGUF block layout, each with a plain CPU reference:
//! [`dequant`] (tensor → f32), [`matvec`] (decode, y = W·x), [`matmul`] (prefill, Y = W·X),
//! and [`bandwidth`], the streaming-read roofline the benchmarks compare against.

pub mod act;
pub mod argmax;
pub mod attention;
pub mod bandwidth;
pub mod cpu;
pub mod dequant;
pub mod embed;
pub mod matmul;
pub mod matvec;
pub mod norm;
pub mod qk_rope;
pub mod rope;
pub mod synth;

use crate::gpu::{
    Binding, Encoder, Gpu, GpuError, GpuWeight, Kernel, Op, PipelineKey, WeightStore,
};

/// The uniform block every kernel reads (`Params` in `shaders/common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub rows: u32,
    pub k: u32,
    pub row_bytes: u32,
    pub cols: u32,
    pub y_offset: u32,
    pub y_stride: u32,
    pub grid_x: u32,
    pub n_out: u32,
    pub row0: u32,
    pub split1: u32,
    pub split2: u32,
    pub _pad: u32,
}

/// Splits `groups` workgroups into an (x, y) grid within the per-dimension limit.
pub(crate) fn grid(gpu: &Gpu, groups: u32) -> (u32, u32) {
    let max = gpu.caps.max_workgroups_per_dim.max(1);
    if groups <= max {
        (groups.max(1), 1)
    } else {
        (max, groups.div_ceil(max))
    }
}

/// Records one dispatch of a block-format kernel with `params` at binding 0, the weights of one
/// chunk at binding 1 and `buffers` (whole) at their bindings; the encoder adds the weight
/// buffer's views at bindings 4 and 5.
pub(crate) fn record(
    enc: &mut Encoder<'_>,
    kernel: &Kernel,
    params: Params,
    weights: &WeightStore,
    buffers: &[(u32, &wgpu::Buffer)],
    groups: (u32, u32),
) {
    let bindings = std::iter::once(Binding::weights(1, weights))
        .chain(buffers.iter().map(|&(b, buf)| Binding::whole(b, buf)))
        .collect();
    enc.dispatch(kernel, &params, bindings, (groups.0, groups.1, 1));
}

/// Checks that a weight can run in the kernels (32-element pieces) and names it if not.
pub(crate) fn check_kernel_shape(w: &GpuWeight) -> Result<(), GpuError> {
    if !w.row_len.is_multiple_of(32) {
        return Err(GpuError::Shape {
            tensor: w.name.clone(),
            detail: format!("row length {} is not a multiple of 32", w.row_len),
        });
    }
    Ok(())
}

/// The pipeline key of `op` for `w` on `gpu`'s current tier.
pub(crate) fn key(gpu: &Gpu, op: Op, w: &GpuWeight, lanes: u32) -> PipelineKey {
    PipelineKey {
        op,
        ty: w.ty,
        tier: gpu.caps.tier,
        lanes,
        dot4: gpu.caps.dot4,
        split: false,
        share_x: if op.is_row() { gpu.caps.share_x() } else { 0 },
        tex: w.chunks.first().is_some_and(|c| c.store.is_texture()),
        rows8: w.rows8,
    }
}

/// Checks that a buffer of `bytes` fits one binding.
pub(crate) fn check_binding(gpu: &Gpu, what: &str, bytes: u64) -> Result<(), GpuError> {
    if bytes > gpu.caps.max_binding {
        return Err(GpuError::BindingTooLarge {
            what: what.to_string(),
            bytes,
            limit: gpu.caps.max_binding,
        });
    }
    Ok(())
}

/// Records one dispatch of a [`KernelSpec`](crate::gpu::KernelSpec) kernel: `params` (a
/// `#[repr(C)]` Pod struct matching the shader's, padded to a multiple of 16 bytes) at binding 0,
/// `buffers[i]` (whole) at binding `i + 1`, over `groups` workgroups.
pub fn dispatch<T: bytemuck::Pod>(
    enc: &mut Encoder<'_>,
    kernel: &Kernel,
    params: &T,
    buffers: &[&wgpu::Buffer],
    groups: (u32, u32, u32),
) {
    enc.dispatch_buffers(kernel, params, buffers, groups);
}
