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
pub mod rope;
pub mod synth;

use wgpu::util::DeviceExt;

use crate::gpu::{Gpu, GpuError, GpuWeight, Kernel, Op, PipelineKey};

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
    pub _pad: [u32; 3],
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

/// Records one dispatch of `pipeline` with `params` at binding 0 and `buffers` at their bindings.
pub(crate) fn record(
    gpu: &Gpu,
    enc: &mut wgpu::CommandEncoder,
    kernel: &Kernel,
    params: Params,
    buffers: &[(u32, wgpu::BindingResource<'_>)],
    groups: (u32, u32),
) {
    let ubuf = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: ubuf.as_entire_binding(),
    }];
    entries.extend(buffers.iter().map(|(b, r)| wgpu::BindGroupEntry {
        binding: *b,
        resource: r.clone(),
    }));
    // Bindings 4 and 5 view the weights (binding 1) as f16 pairs and as 16-byte words.
    if let Some((_, w)) = buffers.iter().find(|(b, _)| *b == 1) {
        for (binding, on) in [(4, kernel.f16_view), (5, kernel.vec4_view)] {
            if on {
                entries.push(wgpu::BindGroupEntry {
                    binding,
                    resource: w.clone(),
                });
            }
        }
    }
    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernel.layout,
        entries: &entries,
    });
    let mut pass = enc.begin_compute_pass(&Default::default());
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(groups.0, groups.1, 1);
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

/// A uniform buffer holding `params` (a `#[repr(C)]` Pod struct matching the shader's, padded to
/// a multiple of 16 bytes).
pub fn uniform<T: bytemuck::Pod>(gpu: &Gpu, params: &T) -> wgpu::Buffer {
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// Records one dispatch of a [`KernelSpec`](crate::gpu::KernelSpec) kernel with `buffers[i]`
/// bound at binding `i` (whole buffers), over `groups` workgroups.
pub fn dispatch(
    gpu: &Gpu,
    enc: &mut wgpu::CommandEncoder,
    kernel: &Kernel,
    buffers: &[&wgpu::Buffer],
    groups: (u32, u32, u32),
) {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernel.layout,
        entries: &entries,
    });
    let mut pass = enc.begin_compute_pass(&Default::default());
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, &bg, &[]);
    pass.dispatch_workgroups(groups.0, groups.1, groups.2);
}
