//! A step's commands, recorded by the ops and submitted at once: one compute pass for every run
//! of consecutive dispatches, every dispatch's parameters in one uniform arena written with one
//! `write_buffer`, and bind groups made once and reused while their buffers stay the same.
//!
//! Ops append to an [`Encoder`] instead of a `wgpu::CommandEncoder`. Nothing touches the GPU
//! until [`Encoder::submit`]: it packs the parameters (each at an offset aligned to the
//! adapter's `min_uniform_buffer_offset_alignment`), writes the arena, then records the
//! dispatches into one command encoder, looking each bind group up by what it binds (layout,
//! buffers, offsets, sizes). The parameters are bound with a dynamic offset, so a bind group
//! does not depend on where in the arena a step put them: a step that runs one dispatch more or
//! less than the last (a decode attention that needs its split pass once the context grows)
//! shifts the offsets of every later dispatch and still finds their bind groups. A decode step
//! repeats the previous step's buffers, so after the first one it finds every bind group and
//! creates no GPU object but its command encoder and pass.
//!
//! Submitting at once is what makes the single arena safe: `write_buffer` for step N+1 is
//! ordered after step N's submission, so each step reads its own parameters.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Mutex;

use super::{Gpu, Kernel};

/// One binding of a dispatch: a whole buffer, a range of it, or a texture (weights held in
/// textures, see [`WeightStore`](super::WeightStore)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    pub binding: u32,
    pub resource: Resource,
}

/// What a [`Binding`] binds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Buffer {
        buffer: wgpu::Buffer,
        offset: u64,
        /// `None`: to the end of the buffer.
        size: Option<NonZeroU64>,
    },
    Texture(wgpu::TextureView),
}

impl Binding {
    /// The whole of `buffer` at `binding`.
    pub fn whole(binding: u32, buffer: &wgpu::Buffer) -> Binding {
        Binding {
            binding,
            resource: Resource::Buffer {
                buffer: buffer.clone(),
                offset: 0,
                size: None,
            },
        }
    }

    /// The weights of one chunk at `binding` (1): its buffer, or its texture.
    pub fn weights(binding: u32, store: &super::WeightStore) -> Binding {
        match store {
            super::WeightStore::Buffer(b) => Binding::whole(binding, b),
            super::WeightStore::Texture { view, .. } => Binding {
                binding,
                resource: Resource::Texture(view.clone()),
            },
        }
    }
}

enum Cmd {
    Dispatch {
        kernel: Kernel,
        /// Byte range of the parameters in the host arena.
        params: (usize, usize),
        bindings: Vec<Binding>,
        groups: (u32, u32, u32),
    },
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

/// What the engine created on the GPU, counted (see [`Gpu::counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuCounts {
    pub buffers: u64,
    /// Bytes of the buffers created (with `buffers`): every GPU allocation the engine makes.
    pub buffer_bytes: u64,
    pub bind_groups: u64,
    pub pipelines: u64,
    /// Compute passes and dispatches recorded, and `write_buffer` calls for parameters.
    pub passes: u64,
    pub dispatches: u64,
    pub submits: u64,
}

impl GpuCounts {
    /// Buffers, bind groups and pipelines: the objects a warm step must not create.
    pub fn objects(&self) -> u64 {
        self.buffers + self.bind_groups + self.pipelines
    }

    /// `self − earlier`, field by field.
    pub fn since(&self, earlier: &GpuCounts) -> GpuCounts {
        GpuCounts {
            buffers: self.buffers - earlier.buffers,
            buffer_bytes: self.buffer_bytes - earlier.buffer_bytes,
            bind_groups: self.bind_groups - earlier.bind_groups,
            pipelines: self.pipelines - earlier.pipelines,
            passes: self.passes - earlier.passes,
            dispatches: self.dispatches - earlier.dispatches,
            submits: self.submits - earlier.submits,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct BindKey {
    layout: wgpu::BindGroupLayout,
    entries: Vec<Binding>,
}

/// Bind groups kept at most; past this the cache starts over (models loaded and dropped in one
/// process would otherwise keep their buffers alive through it).
const MAX_BIND_GROUPS: usize = 8192;

/// The arena and the bind-group cache, shared by every encoder of a [`Gpu`].
#[derive(Default)]
pub(crate) struct StepCache {
    arena: Option<wgpu::Buffer>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    pub(crate) counts: GpuCounts,
    /// Profiling (see [`Gpu::set_profiling`]): each dispatch in its own pass with timestamps.
    profiling: bool,
    /// Submitted, not yet read: (labels of the dispatches, the mappable timestamps buffer).
    profiles: Vec<(Vec<std::sync::Arc<str>>, wgpu::Buffer)>,
}

impl Gpu {
    /// Turns per-dispatch timing on or off (on only where the device has timestamp queries;
    /// returns whether it is on). While on, each dispatch gets its own compute pass with
    /// timestamps, which changes what is measured for the whole step: use it to see the shares
    /// of the ops, not the step's speed.
    pub fn set_profiling(&self, on: bool) -> bool {
        let on = on && self.caps.timestamps;
        self.step_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .profiling = on;
        on
    }

    /// GPU time per dispatch, in nanoseconds, of every step submitted while profiling, with its
    /// kernel's label; clears them.
    pub async fn take_profile(&self) -> Result<Vec<(std::sync::Arc<str>, f64)>, super::GpuError> {
        let pending = std::mem::take(
            &mut self
                .step_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .profiles,
        );
        let period = f64::from(self.queue.get_timestamp_period());
        let mut out = Vec::new();
        for (labels, buf) in pending {
            let bytes = self.read_mapped(&buf, buf.size()).await?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
            for (i, label) in labels.into_iter().enumerate() {
                let (a, b) = (ticks[2 * i], ticks[2 * i + 1]);
                out.push((label, b.saturating_sub(a) as f64 * period));
            }
        }
        Ok(out)
    }
}

pub(crate) type SharedStepCache = Mutex<StepCache>;

/// A step being recorded; see the [module docs](self).
pub struct Encoder<'g> {
    gpu: &'g Gpu,
    cmds: Vec<Cmd>,
    arena: Vec<u8>,
    align: usize,
}

impl<'g> Encoder<'g> {
    pub fn new(gpu: &'g Gpu) -> Encoder<'g> {
        let align = gpu
            .device
            .limits()
            .min_uniform_buffer_offset_alignment
            .max(16) as usize;
        Encoder {
            gpu,
            cmds: Vec::new(),
            arena: Vec::new(),
            align,
        }
    }

    /// The GPU this encoder records for.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Bytes of parameters recorded so far.
    pub fn arena_len(&self) -> usize {
        self.arena.len()
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.cmds
            .iter()
            .filter(|c| matches!(c, Cmd::Dispatch { .. }))
            .count()
    }

    /// Records a dispatch of `kernel` over `groups` with `params` (a `#[repr(C)]` Pod block) at
    /// binding 0 and `bindings` at theirs.
    pub fn dispatch<T: bytemuck::Pod>(
        &mut self,
        kernel: &Kernel,
        params: &T,
        bindings: Vec<Binding>,
        groups: (u32, u32, u32),
    ) {
        let bytes = bytemuck::bytes_of(params);
        let start = self.arena.len().div_ceil(self.align) * self.align;
        self.arena.resize(start, 0);
        self.arena.extend_from_slice(bytes);
        // Uniform bindings are read in 16-byte rows.
        let len = bytes.len().div_ceil(16) * 16;
        self.arena.resize(start + len, 0);
        self.cmds.push(Cmd::Dispatch {
            kernel: kernel.clone(),
            params: (start, len),
            bindings,
            groups,
        });
    }

    /// Records a dispatch whose buffers are bound whole at bindings 1, 2, … in order.
    pub fn dispatch_buffers<T: bytemuck::Pod>(
        &mut self,
        kernel: &Kernel,
        params: &T,
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32, u32),
    ) {
        let bindings = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| Binding::whole(i as u32 + 1, b))
            .collect();
        self.dispatch(kernel, params, bindings, groups);
    }

    /// Records a buffer-to-buffer copy (it ends the current compute pass).
    pub fn copy_buffer_to_buffer(
        &mut self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        self.cmds.push(Cmd::Copy {
            src: src.clone(),
            src_offset,
            dst: dst.clone(),
            dst_offset,
            size,
        });
    }

    /// The arena buffer, grown (by doubling) to hold this step's parameters.
    fn arena_buffer(&self, cache: &mut StepCache) -> wgpu::Buffer {
        let need = (self.arena.len() as u64).max(256);
        let arena = match &cache.arena {
            Some(a) if a.size() >= need => a.clone(),
            _ => {
                // Bind groups of the old arena are dropped with it.
                let size = need.next_power_of_two();
                let a = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("parameter arena"),
                    size,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                cache.counts.buffers += 1;
                cache.counts.buffer_bytes += size;
                cache.bind_groups.clear();
                cache.arena = Some(a.clone());
                a
            }
        };
        if cache.bind_groups.len() > MAX_BIND_GROUPS {
            cache.bind_groups.clear();
        }
        arena
    }

    /// The bind group of a dispatch: found in the cache, or made and kept.
    fn bind_group(
        gpu: &Gpu,
        cache: &mut StepCache,
        arena: &wgpu::Buffer,
        kernel: &Kernel,
        params: (usize, usize),
        mut bindings: Vec<Binding>,
    ) -> wgpu::BindGroup {
        bindings.insert(
            0,
            Binding {
                binding: 0,
                resource: Resource::Buffer {
                    buffer: arena.clone(),
                    // Bound at offset 0; the dispatch's offset is dynamic.
                    offset: 0,
                    size: NonZeroU64::new(params.1 as u64),
                },
            },
        );
        // Bindings 4 and 5 view the weights (binding 1, a buffer) as f16 pairs and as
        // 16-byte words.
        if let Some(w) = bindings.iter().find(|b| b.binding == 1).cloned() {
            for (binding, on) in [(4, kernel.f16_view), (5, kernel.vec4_view)] {
                if on {
                    bindings.push(Binding {
                        binding,
                        ..w.clone()
                    });
                }
            }
        }
        let key = BindKey {
            layout: kernel.layout.clone(),
            entries: bindings,
        };
        match cache.bind_groups.get(&key) {
            Some(bg) => bg.clone(),
            None => {
                let entries: Vec<wgpu::BindGroupEntry> = key
                    .entries
                    .iter()
                    .map(|b| wgpu::BindGroupEntry {
                        binding: b.binding,
                        resource: match &b.resource {
                            Resource::Buffer {
                                buffer,
                                offset,
                                size,
                            } => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer,
                                offset: *offset,
                                size: *size,
                            }),
                            Resource::Texture(view) => wgpu::BindingResource::TextureView(view),
                        },
                    })
                    .collect();
                let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &kernel.layout,
                    entries: &entries,
                });
                cache.counts.bind_groups += 1;
                cache.bind_groups.insert(key, bg.clone());
                bg
            }
        }
    }

    /// Makes every bind group the recorded step would use and keeps them, without running it:
    /// loading records each shape of step once this way, so that no request creates one.
    pub fn prepare(self) {
        let gpu = self.gpu;
        let mut cache = gpu.step_cache.lock().unwrap_or_else(|e| e.into_inner());
        let arena = self.arena_buffer(&mut cache);
        for cmd in self.cmds {
            if let Cmd::Dispatch {
                kernel,
                params,
                bindings,
                ..
            } = cmd
            {
                Self::bind_group(gpu, &mut cache, &arena, &kernel, params, bindings);
            }
        }
    }

    /// Writes the parameters, records everything into one command encoder and submits it.
    pub fn submit(self) {
        let gpu = self.gpu;
        if self.cmds.is_empty() {
            return;
        }
        let mut cache = gpu.step_cache.lock().unwrap_or_else(|e| e.into_inner());
        let arena = self.arena_buffer(&mut cache);
        if !self.arena.is_empty() {
            gpu.queue.write_buffer(&arena, 0, &self.arena);
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        // Profiling: a query pair per dispatch (WebGPU allows 4096 queries per set).
        let n_dispatch = self
            .cmds
            .iter()
            .filter(|c| matches!(c, Cmd::Dispatch { .. }))
            .count()
            .min(2048);
        let queries = (cache.profiling && n_dispatch > 0).then(|| {
            gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * n_dispatch as u32,
            })
        });
        let mut labels = Vec::new();
        for cmd in self.cmds {
            match cmd {
                Cmd::Dispatch {
                    kernel,
                    params,
                    bindings,
                    groups,
                } => {
                    let bg = Self::bind_group(gpu, &mut cache, &arena, &kernel, params, bindings);
                    let timed = queries.as_ref().filter(|_| labels.len() < n_dispatch);
                    if let Some(qs) = timed {
                        // Its own pass, timed at both ends.
                        drop(pass.take());
                        let i = labels.len() as u32;
                        labels.push(kernel.label.clone());
                        pass = Some(
                            enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: None,
                                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                    query_set: qs,
                                    beginning_of_pass_write_index: Some(2 * i),
                                    end_of_pass_write_index: Some(2 * i + 1),
                                }),
                            })
                            .forget_lifetime(),
                        );
                    }
                    let p = pass.get_or_insert_with(|| {
                        cache.counts.passes += 1;
                        enc.begin_compute_pass(&Default::default())
                            .forget_lifetime()
                    });
                    p.set_pipeline(&kernel.pipeline);
                    p.set_bind_group(0, &bg, &[params.0 as u32]);
                    p.dispatch_workgroups(groups.0, groups.1, groups.2);
                    cache.counts.dispatches += 1;
                }
                Cmd::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    drop(pass.take());
                    enc.copy_buffer_to_buffer(&src, src_offset, &dst, dst_offset, size);
                }
            }
        }
        drop(pass);
        if let Some(qs) = &queries {
            let bytes = labels.len() as u64 * 16;
            let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            // Not `Gpu::readback_buffer`: it counts through the lock held here.
            let read = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            cache.counts.buffers += 2;
            cache.counts.buffer_bytes += 2 * bytes;
            enc.resolve_query_set(qs, 0..2 * labels.len() as u32, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &read, 0, bytes);
            cache.profiles.push((labels, read));
        }
        cache.counts.submits += 1;
        drop(cache);
        gpu.queue.submit([enc.finish()]);
    }
}
