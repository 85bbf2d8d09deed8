//! Pipelines are compiled lazily, once per [`PipelineKey`], and cached for the device's lifetime.

use super::Tier;
use crate::quant::GgmlType;

/// Which kernel a pipeline runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Block data to f32, one invocation per 32 elements.
    Dequant,
    /// y = W·x, one invocation per row, no barriers (software adapters).
    MatvecRow,
    /// y = W·x, a group of lanes per row with a reduction (real GPUs).
    MatvecWg,
    /// y = act(W_gate·x) · (W_up·x) from a fused gate+up weight (gate rows, then up rows), in
    /// the row and the workgroup family, with GeLU (tanh) or SiLU.
    MatvecRowGeglu,
    MatvecRowSwiglu,
    MatvecWgGeglu,
    MatvecWgSwiglu,
    /// The six matvec kernels above at `fast` precision: x as 8-bit quants (binding 2) with
    /// per-piece scales (binding 6), integer dot products (`shaders/x8.wgsl`).
    MatvecRowX8,
    MatvecRowX8Geglu,
    MatvecRowX8Swiglu,
    MatvecWgX8,
    MatvecWgX8Geglu,
    MatvecWgX8Swiglu,
    /// Y = W·X, one invocation per (row, 4 columns), no barriers (software adapters).
    MatmulRow,
    /// Y = W·X, shared-memory tiles of 64 rows × 32 columns × 32 K (real GPUs).
    MatmulTiled,
    /// Y = W·X for up to 8 columns (`lanes` of the key: one of `ops::matmul::FEW_COLS`): one
    /// invocation per 2 rows × every column, each block dequantized once for all of them (verify passes, short prompts; the
    /// row family's adapters).
    MatmulFew,
    /// Streaming read of a large buffer: the read-bandwidth roofline.
    ReadBandwidth,
    /// Independent FMA chains: the ALU roofline.
    AluPeak,
    /// Embedding lookup: dequantized rows of W picked by token ids.
    GetRows,
}

/// Everything that selects a distinct compiled pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub op: Op,
    /// Block format of the weights (ignored by [`Op::ReadBandwidth`]).
    pub ty: GgmlType,
    pub tier: Tier,
    /// Lanes per row for [`Op::MatvecWg`], rows per invocation for [`Op::MatvecRow`], columns
    /// for [`Op::MatmulFew`]; 0 elsewhere.
    pub lanes: u32,
    /// The x8 kernels use WGSL's `dot4I8Packed` (else plain integer math): see
    /// [`Capabilities::dot4`](super::Capabilities::dot4).
    pub dot4: bool,
    /// A plain matvec whose rows go to three outputs (Y, Y2, Y3 at bindings 3, 7, 8, split at
    /// `split1` and `split2`): q, k and v from one concatenated weight in one dispatch.
    pub split: bool,
    /// The row kernels' lanes share x's loads through their subgroup (`SHARE_X`) in groups of
    /// this many lanes (8 or 4; 0: not shared): see
    /// [`Capabilities::share_x`](super::Capabilities::share_x).
    pub share_x: u32,
    /// The weights are an `rgba32uint` texture at binding 1 (`TEX`, see `gpu::WeightStore`),
    /// not a storage buffer viewed at bindings 1, 4 and 5.
    pub tex: bool,
    /// The weights' rows are interleaved by eight (`ROWS8`, see `gpu::ROWS8`); in the row
    /// matvec, lane l of every 8 invocations then takes rows ≡ l (mod 8).
    pub rows8: bool,
}

impl Op {
    /// The matvec kernels of the workgroup family (`LANES` lanes per row).
    pub fn is_matvec_wg(self) -> bool {
        matches!(
            self,
            Op::MatvecWg
                | Op::MatvecWgGeglu
                | Op::MatvecWgSwiglu
                | Op::MatvecWgX8
                | Op::MatvecWgX8Geglu
                | Op::MatvecWgX8Swiglu
        )
    }

    /// The matvec kernels of the row family (`ROWS` rows per invocation).
    pub fn is_matvec_row(self) -> bool {
        matches!(
            self,
            Op::MatvecRow
                | Op::MatvecRowGeglu
                | Op::MatvecRowSwiglu
                | Op::MatvecRowX8
                | Op::MatvecRowX8Geglu
                | Op::MatvecRowX8Swiglu
        )
    }

    /// The kernels of the row family, which load x once per subgroup where they can
    /// ([`PipelineKey::share_x`]).
    pub fn is_row(self) -> bool {
        self.is_matvec_row() || matches!(self, Op::MatmulRow | Op::MatmulFew)
    }

    /// The kernels that read block-format weights (not the roofline kernels).
    pub fn reads_weights(self) -> bool {
        !matches!(self, Op::ReadBandwidth | Op::AluPeak)
    }

    /// The kernels that read x as 8-bit quants.
    pub fn is_x8(self) -> bool {
        matches!(
            self,
            Op::MatvecRowX8
                | Op::MatvecRowX8Geglu
                | Op::MatvecRowX8Swiglu
                | Op::MatvecWgX8
                | Op::MatvecWgX8Geglu
                | Op::MatvecWgX8Swiglu
        )
    }

    /// The GLU variant (a fused gate+up weight): `Some(true)` for GeGLU, `Some(false)` for SwiGLU.
    pub fn glu(self) -> Option<bool> {
        match self {
            Op::MatvecRowGeglu | Op::MatvecWgGeglu | Op::MatvecRowX8Geglu | Op::MatvecWgX8Geglu => {
                Some(true)
            }
            Op::MatvecRowSwiglu
            | Op::MatvecWgSwiglu
            | Op::MatvecRowX8Swiglu
            | Op::MatvecWgX8Swiglu => Some(false),
            _ => None,
        }
    }
}

use super::device::Gpu;
use super::error::GpuError;

/// A compiled kernel with its explicit bind group layout.
#[derive(Clone)]
pub struct Kernel {
    /// What it computes, e.g. `MatvecRow Q4_K T2` or `rms_norm v1 T0`: the op in profiles.
    pub label: std::sync::Arc<str>,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// Binding 4 is the weight buffer again, viewed as f16 pairs (tiers T1 and up).
    pub f16_view: bool,
    /// Binding 5 is the weight buffer again, viewed as vec4<u32>.
    pub vec4_view: bool,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Bindings: 0 params (uniform), 1 W (a texture with `tex`), 2 X (matvec, matmul; 8-bit quants in the x8 kernels), 3 Y,
/// 4 W as f16 pairs (T1+), 5 W as 16-byte words, 6 x's per-piece scales (x8 kernels).
/// Also returns whether bindings 4 (f16 view) and 5 (vec4 view) are in it.
fn layout_entries(key: &PipelineKey) -> (Vec<wgpu::BindGroupLayoutEntry>, bool, bool) {
    let mut e = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            // Parameters live in the step's arena at an offset given per dispatch, so a
            // bind group does not depend on where a step puts them.
            has_dynamic_offset: true,
            min_binding_size: None,
        },
        count: None,
    }];
    let weights = key.op.reads_weights();
    if key.tex && weights {
        e.push(wgpu::BindGroupLayoutEntry {
            binding: 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Uint,
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        });
    } else {
        e.push(storage_entry(1, true));
    }
    if !matches!(key.op, Op::Dequant | Op::ReadBandwidth | Op::AluPeak) {
        e.push(storage_entry(2, true));
    }
    e.push(storage_entry(3, false));
    let vec4_view = weights && !key.tex;
    if vec4_view {
        e.push(storage_entry(5, true));
    }
    if key.op.is_x8() {
        e.push(storage_entry(6, true));
    }
    if key.split {
        e.push(storage_entry(7, false));
        e.push(storage_entry(8, false));
    }
    let f16_view = key.tier >= Tier::T1 && weights && !key.tex;
    if f16_view {
        e.push(storage_entry(4, true));
    }
    (e, f16_view, vec4_view)
}

impl Gpu {
    /// The compiled pipeline for `key`, built on first use and cached. `lanes` (matvec) is passed
    /// to the shader as the `LANES` override constant.
    pub async fn pipeline(&self, key: PipelineKey) -> Result<Kernel, GpuError> {
        if let Some(p) = self
            .pipelines
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let src = super::shader::shader_source(&key).ok_or_else(|| GpuError::UnsupportedType {
            tensor: format!("{:?} kernel", key.op),
            ty: key.ty,
        })?;
        let what = format!("{:?} {} {:?}", key.op, key.ty, key.tier);
        let wg = key.op.is_matvec_wg();
        let constants: Vec<(&str, f64)> = if wg {
            vec![("LANES", f64::from(key.lanes))]
        } else {
            Vec::new()
        };
        let (entries, f16_view, vec4_view) = layout_entries(&key);
        let kernel = self
            .build(&what, src, &entries, &constants, f16_view, vec4_view)
            .await?;
        if let Ok(mut m) = self.pipelines.lock() {
            m.insert(key, kernel.clone());
        }
        Ok(kernel)
    }
}

/// How a binding of a [`KernelSpec`] kernel is used. Binding `i` of the layout is `bindings[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bind {
    Uniform,
    Read,
    ReadWrite,
}

/// A kernel that does not read block-format weights (norms, RoPE, attention, sampling, …):
/// its op file supplies the WGSL and the binding list itself.
pub struct KernelSpec<'a> {
    /// Unique name of the kernel (cache key together with the tier and `variant`).
    pub name: &'static str,
    /// Distinguishes compiled variants of the same kernel (e.g. a head dimension).
    pub variant: u32,
    /// The complete WGSL for a tier; typically `preprocess(include_str!(…), flags)`.
    pub source: &'a dyn Fn(Tier) -> String,
    /// Bindings 0, 1, 2, … of group 0.
    pub bindings: &'a [Bind],
    /// Values for `override` constants.
    pub constants: &'a [(&'a str, f64)],
}

impl Gpu {
    /// The compiled pipeline of `spec` at the device's current tier, built on first use and cached.
    pub async fn kernel(&self, spec: &KernelSpec<'_>) -> Result<Kernel, GpuError> {
        let tier = self.caps.tier;
        let ck = (spec.name, tier, spec.variant);
        if let Some(k) = self.custom.lock().ok().and_then(|m| m.get(&ck).cloned()) {
            return Ok(k);
        }
        let what = format!("{} v{} {:?}", spec.name, spec.variant, tier);
        let src = format!(
            "{}{}",
            super::shader::enables(tier, false),
            (spec.source)(tier)
        );
        let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Bind::Uniform => wgpu::BufferBindingType::Uniform,
                        Bind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Bind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    // The parameters' offset in the arena is dynamic (see layout_entries).
                    has_dynamic_offset: *b == Bind::Uniform,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let kernel = self
            .build(&what, src, &entries, spec.constants, false, false)
            .await?;
        if let Ok(mut m) = self.custom.lock() {
            m.insert(ck, kernel.clone());
        }
        Ok(kernel)
    }

    async fn build(
        &self,
        what: &str,
        src: String,
        entries: &[wgpu::BindGroupLayoutEntry],
        constants: &[(&str, f64)],
        f16_view: bool,
        vec4_view: bool,
    ) -> Result<Kernel, GpuError> {
        self.count(|c| c.pipelines += 1);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(what),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(what),
                entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(what),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(what),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(err) = scope.pop().await {
            return Err(GpuError::Validation {
                what: format!("compiling {what}"),
                message: err.to_string(),
            });
        }
        Ok(Kernel {
            label: what.into(),
            pipeline,
            layout,
            f16_view,
            vec4_view,
        })
    }
}
