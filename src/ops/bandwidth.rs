//! The kernels that measure an adapter's rooflines: streaming reads (bandwidth) and FMA chains (ALU).

use super::{grid, record, Params};
use crate::gpu::Encoder;
use crate::gpu::{Gpu, GpuError, Op, PipelineKey, WeightStore};
use crate::quant::GgmlType;

/// How the roofline kernel walks memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadShape {
    /// Each invocation streams one contiguous slice (what CPU-backed adapters prefer).
    Contiguous,
    /// Invocation i reads words i, i + n, i + 2n, … (coalesced across a real GPU's lanes).
    Interleaved,
}

/// Invocations used by the roofline kernel.
pub const READ_INVOCATIONS: u32 = 64 * 256;

/// Records one full read of `src` (`words` u32 values) into `enc`.
pub async fn encode_read(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    src: &wgpu::Buffer,
    words: u32,
    sink: &wgpu::Buffer,
    shape: ReadShape,
) -> Result<(), GpuError> {
    // In vec4 words: a whole number of 4-word steps per invocation.
    let vec4s = words / 4;
    let per = (vec4s / READ_INVOCATIONS) / 4 * 4;
    let params = Params {
        rows: vec4s,
        k: per,
        cols: u32::from(shape == ReadShape::Interleaved),
        ..Params::default()
    };
    dispatch(gpu, enc, Op::ReadBandwidth, params, src, sink).await
}

/// One dispatch of a roofline kernel over `READ_INVOCATIONS` invocations.
async fn dispatch(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    op: Op,
    params: Params,
    src: &wgpu::Buffer,
    sink: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let key = PipelineKey {
        op,
        ty: GgmlType::F32,
        tier: gpu.caps.tier,
        lanes: 0,
        dot4: false,
        split: false,
        share_x: 0,
        tex: false,
        rows8: false,
    };
    let kernel = gpu.pipeline(key).await?;
    let (gx, gy) = grid(gpu, READ_INVOCATIONS / 64);
    let src = WeightStore::Buffer(src.clone());
    record(enc, &kernel, params, &src, &[(3, sink)], (gx, gy));
    Ok(())
}

/// FMA steps per invocation of the ALU roofline kernel (16 FMAs each).
pub const ALU_STEPS: u32 = 4096;

/// Records one run of the ALU roofline kernel: `READ_INVOCATIONS` × `ALU_STEPS` × 16 FMAs.
pub async fn encode_alu(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    src: &wgpu::Buffer,
    sink: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let params = Params {
        k: ALU_STEPS,
        ..Params::default()
    };
    dispatch(gpu, enc, Op::AluPeak, params, src, sink).await
}
