//! Adapter and device setup: real limits, capabilities, tiers, and the env switches that force
//! a lower tier, a smaller binding limit, a kernel family or a particular adapter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::GpuError;
use super::pipeline::{Kernel, PipelineKey};

/// Capability tiers. Each tier adds to the one below; kernels are written for every tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// No `shader-f16`, no subgroups: f16 values unpacked from u32 with `unpack2x16float`.
    T0,
    /// + `shader-f16`: half values read with `bitcast<vec2<f16>>`.
    T1,
    /// + subgroups: reductions with subgroup shuffles instead of workgroup memory and barriers.
    T2,
}

impl Tier {
    fn parse(s: &str) -> Option<Tier> {
        match s.trim().trim_start_matches(['T', 't']) {
            "0" => Some(Tier::T0),
            "1" => Some(Tier::T1),
            "2" => Some(Tier::T2),
            _ => None,
        }
    }
}

/// The two kernel shapes. Real GPUs want many cooperating lanes per row; software adapters
/// (lavapipe, SwiftShader) run each invocation as a SIMD lane on a CPU core and prefer one
/// invocation per row with no barriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelFamily {
    /// One invocation per output row, no workgroup memory, no barriers.
    Row,
    /// Cooperative: lanes split a row (matvec), shared-memory tiles (matmul).
    Workgroup,
}

impl KernelFamily {
    /// Name used in reports and in `WISP_KERNELS`.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Row => "row",
            KernelFamily::Workgroup => "workgroup",
        }
    }
}

/// What to ask of the adapter. [`GpuOptions::from_env`] reads the user-facing switches.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Pick the first adapter whose name contains this (case-insensitive). `WISP_ADAPTER`.
    pub adapter: Option<String>,
    /// Never use a tier above this one. `WISP_TIER=0|1|2`.
    pub max_tier: Option<Tier>,
    /// Treat the storage binding limit as at most this many bytes. `WISP_MAX_BINDING` (bytes, or with K/M/G suffix).
    pub max_binding: Option<u64>,
    /// Force a kernel family. `WISP_KERNELS=row|workgroup`.
    pub family: Option<KernelFamily>,
    /// Force where weights live: `Some(true)` textures, `Some(false)` storage buffers
    /// (`WISP_WEIGHTS=texture|buffer`); `None`: measured with the kernel family.
    pub weight_textures: Option<bool>,
    /// Store repacked weights with rows interleaved by eight (`gpu::ROWS8`): `Some(true)`
    /// always (`WISP_LAYOUT=rows8`), `Some(false)` never (`WISP_LAYOUT=gguf`), `None` where the
    /// row family runs the matvecs.
    pub rows8: Option<bool>,
}

/// Where weights live, by name (`WISP_WEIGHTS`, and the JS `weights` option): `Some(true)` for
/// "texture", `Some(false)` for "buffer" (plurals too), `None` for anything else.
pub fn weight_store(name: &str) -> Option<bool> {
    match name.trim() {
        "texture" | "textures" => Some(true),
        "buffer" | "buffers" => Some(false),
        _ => None,
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

impl GpuOptions {
    /// Reads `WISP_ADAPTER`, `WISP_TIER`, `WISP_MAX_BINDING`, `WISP_KERNELS`, `WISP_WEIGHTS`.
    pub fn from_env() -> Result<GpuOptions, GpuError> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let bad = |name: &str, value: String, reason: &str| GpuError::BadSetting {
            name: name.into(),
            value,
            reason: reason.into(),
        };
        let mut o = GpuOptions {
            adapter: var("WISP_ADAPTER"),
            ..GpuOptions::default()
        };
        if let Some(v) = var("WISP_TIER") {
            o.max_tier =
                Some(Tier::parse(&v).ok_or_else(|| bad("WISP_TIER", v, "expected 0, 1 or 2"))?);
        }
        if let Some(v) = var("WISP_MAX_BINDING") {
            let n = parse_size(&v).filter(|&n| n >= 1 << 16).ok_or_else(|| {
                bad(
                    "WISP_MAX_BINDING",
                    v,
                    "expected a size of at least 64K, e.g. 16M",
                )
            })?;
            o.max_binding = Some(n);
        }
        if let Some(v) = var("WISP_KERNELS") {
            o.family = Some(match v.trim() {
                "row" => KernelFamily::Row,
                "workgroup" | "wg" => KernelFamily::Workgroup,
                _ => return Err(bad("WISP_KERNELS", v, "expected row or workgroup")),
            });
        }
        if let Some(v) = var("WISP_LAYOUT") {
            o.rows8 = Some(match v.trim() {
                "rows8" => true,
                "gguf" => false,
                _ => return Err(bad("WISP_LAYOUT", v, "expected rows8 or gguf")),
            });
        }
        if let Some(v) = var("WISP_MEASURE") {
            if v.trim() != "no-weight-loads" {
                return Err(bad("WISP_MEASURE", v, "expected no-weight-loads"));
            }
        }
        if let Some(v) = var("WISP_WEIGHTS") {
            match weight_store(&v) {
                Some(t) => o.weight_textures = Some(t),
                None => return Err(bad("WISP_WEIGHTS", v, "expected texture or buffer")),
            }
        }
        Ok(o)
    }
}

/// The adapter as a user would want it named in a report.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

impl Capabilities {
    /// Weights of block type `ty` go to textures ([`weight_textures`](Self::weight_textures)).
    pub fn textures_for(&self, ty: crate::quant::GgmlType) -> bool {
        ty.0 < 64 && (self.weight_textures >> ty.0) & 1 == 1
    }

    /// Weights of block type `ty` uploaded now get rows interleaved by eight (`gpu::ROWS8`):
    /// [`rows8`](Self::rows8), for a repacked type.
    pub fn rows8_for(&self, ty: crate::quant::GgmlType) -> bool {
        self.rows8 && super::buffer::repacked(ty)
    }

    /// The supported block types whose weights go to textures.
    pub fn texture_types(&self) -> Vec<crate::quant::GgmlType> {
        crate::quant::GgmlType::SUPPORTED
            .into_iter()
            .filter(|&t| self.textures_for(t))
            .collect()
    }

    /// How many lanes of a subgroup share x's loads in the row kernels (0: none). With 8, each
    /// of a subgroup's first 8 lanes loads one 16-byte word of a 32-value piece and
    /// `subgroupBroadcast` hands the piece to every lane; with 4 (SwiftShader's subgroups),
    /// each of the first 4 loads two. On software adapters, where every storage load is a loop
    /// over the SIMD lanes, this cuts x's loads eight- or fourfold.
    ///
    /// Subgroups are used for this at T2, and below T2 where the adapter is there for lack of
    /// `shader-f16` alone (SwiftShader): a tier forced below what the adapter has (`WISP_TIER`,
    /// [`Gpu::set_tier`]) stands for an adapter without subgroups, so its plain kernels stay
    /// tested.
    pub fn share_x(&self) -> u32 {
        if !self.subgroups || (self.tier < Tier::T2 && self.shader_f16) {
            0
        } else if self.subgroup_min_size >= 8 {
            8
        } else if self.subgroup_min_size >= 4 {
            4
        } else {
            0
        }
    }
}

/// What the device can do, after any forced limits.
#[derive(Clone, Debug)]
pub struct Capabilities {
    pub adapter: AdapterSummary,
    pub shader_f16: bool,
    /// The device has subgroups enabled: at T2, and for sharing x's loads below it
    /// ([`Capabilities::share_x`]).
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// Storage binding size the kernels plan with (the adapter's, or less if forced).
    pub max_binding: u64,
    /// The adapter's own `maxStorageBufferBindingSize`.
    pub adapter_max_binding: u64,
    pub max_buffer_size: u64,
    pub max_workgroup_storage: u32,
    pub max_invocations: u32,
    pub max_storage_buffers_per_stage: u32,
    pub max_workgroups_per_dim: u32,
    pub min_storage_offset_alignment: u32,
    /// `minUniformBufferOffsetAlignment`: the parameter arena's slot alignment.
    pub uniform_align: u32,
    /// WGSL's `dot4I8Packed` (the `packed_4x8_integer_dot_product` language extension) may be
    /// used: always natively (naga emits SPIR-V `OpSDot` where the driver has it, integer math
    /// where not), in the browser where `navigator.gpu.wgslLanguageFeatures` lists it.
    pub dot4: bool,
    /// The device has `TIMESTAMP_QUERY` (per-op timing in `wisp bench`).
    pub timestamps: bool,
    /// Highest tier the device supports, after `max_tier`.
    pub tier: Tier,
    /// Kernel family of the matvecs (decode).
    pub family: KernelFamily,
    /// Kernel family of the matmuls (prefill): measured on its own (`bench::FamilyProbe`), since
    /// the faster decode kernels need not belong to the family with the faster prefill.
    pub prefill_family: KernelFamily,
    /// The block types whose weights are uploaded to textures instead of storage buffers
    /// (`gpu::WeightStore`), bit `ty.0` for type `ty`: where texture loads cost less, as for some
    /// formats on SwiftShader. Measured per type with the kernel family (`bench::FamilyProbe`)
    /// unless [`weights_forced`](Self::weights_forced). See [`textures_for`](Self::textures_for).
    pub weight_textures: u64,
    /// `WISP_WEIGHTS` chose [`weight_textures`](Self::weight_textures): not measured.
    pub weights_forced: bool,
    /// Software rasterizer/compute (lavapipe, SwiftShader, WARP).
    pub is_software: bool,
    /// Repacked weights uploaded now get their rows interleaved by eight (`gpu::ROWS8`): where
    /// the row family runs the matvecs, since its lanes each take a row and adjacent rows' blocks
    /// then lie side by side; the workgroup family's lanes split a row, which GGUF's order keeps
    /// contiguous. Follows the family ([`Gpu::set_family`]) unless `WISP_LAYOUT` forced it
    /// ([`rows8_forced`](Self::rows8_forced)); [`Gpu::set_rows8`] sets it (tests run both).
    pub rows8: bool,
    /// `WISP_LAYOUT=rows8|gguf`: [`rows8`](Self::rows8) does not follow the family.
    pub rows8_forced: Option<bool>,
}

/// A device ready to run Wisp's kernels.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub caps: Capabilities,
    pub(super) pipelines: Mutex<HashMap<PipelineKey, Kernel>>,
    pub(super) custom: Mutex<HashMap<(&'static str, Tier, u32), Kernel>>,
    /// The parameter arena, cached bind groups and the object counters (`encoder.rs`).
    pub(crate) step_cache: super::encoder::SharedStepCache,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

fn new_instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var("WGPU_BACKEND").is_err() {
        desc.backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::PRIMARY
        };
    }
    wgpu::Instance::new(desc)
}

/// What to do when no adapter is found at all, where it happens.
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = ": this browser offers no WebGPU here (Chrome or Edge 113+ on \
    Windows, macOS and ChromeOS, Chrome 121+ on Android, Safari 26 and Firefox 141+ on Windows \
    have it; Chrome on Linux needs chrome://flags/#enable-unsafe-webgpu)";
#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str = ": no Vulkan, Metal or DX12 driver offers a GPU (install your \
    GPU's driver, or Mesa's lavapipe, Debian's mesa-vulkan-drivers, for a software adapter)";

impl Gpu {
    /// Every adapter this process can see (natively: all of them; in the browser: the one it offers).
    pub async fn adapters() -> Vec<wgpu::Adapter> {
        let instance = new_instance();
        if cfg!(target_arch = "wasm32") {
            let opts = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            };
            return instance.request_adapter(&opts).await.into_iter().collect();
        }
        let mut all = instance.enumerate_adapters(wgpu::Backends::all()).await;
        // Compute-capable backends only; GL lacks storage buffers in compute on some drivers.
        all.retain(|a| a.get_info().backend != wgpu::Backend::Noop);
        all
    }

    /// Opens the adapter the options select (by name), else the best one available.
    pub async fn new(opts: &GpuOptions) -> Result<Gpu, GpuError> {
        let adapters = Gpu::adapters().await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let chosen = match &opts.adapter {
            Some(want) => {
                let w = want.to_lowercase();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&w))
                    .ok_or_else(|| {
                        GpuError::NoAdapter(format!(
                            " named like '{want}' (have: {})",
                            names.join(", ")
                        ))
                    })?
            }
            None => {
                // Prefer a real GPU, then anything with compute.
                let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
                    wgpu::DeviceType::DiscreteGpu => 0,
                    wgpu::DeviceType::IntegratedGpu => 1,
                    wgpu::DeviceType::VirtualGpu => 2,
                    wgpu::DeviceType::Cpu => 3,
                    wgpu::DeviceType::Other => 4,
                };
                // Among equals, prefer the one with more of the features the tiers use.
                let features = |a: &wgpu::Adapter| {
                    let f = a.features();
                    -(i32::from(f.contains(wgpu::Features::SHADER_F16))
                        + i32::from(f.contains(wgpu::Features::SUBGROUP)))
                };
                let mut adapters = adapters;
                adapters.sort_by_key(|a| (rank(a), features(a)));
                adapters
                    .into_iter()
                    .next()
                    .ok_or_else(|| GpuError::NoAdapter(NO_ADAPTER_HINT.into()))?
            }
        };
        Gpu::from_adapter(chosen, opts).await
    }

    /// Opens a device on `adapter` with the adapter's real limits and the features of the highest
    /// tier it supports (capped by `opts.max_tier`).
    pub async fn from_adapter(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu, GpuError> {
        let info = adapter.get_info();
        let feats = adapter.features();
        let limits = adapter.limits();
        let max_tier = opts.max_tier.unwrap_or(Tier::T2);
        let has_f16 = feats.contains(wgpu::Features::SHADER_F16);
        let has_sg = feats.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 4;
        let tier = if has_f16 && has_sg && max_tier >= Tier::T2 {
            Tier::T2
        } else if has_f16 && max_tier >= Tier::T1 {
            Tier::T1
        } else {
            Tier::T0
        };
        let mut required = wgpu::Features::empty();
        if tier >= Tier::T1 {
            required |= wgpu::Features::SHADER_F16;
        }
        // Below T2 for lack of f16 alone, subgroups still share x's loads (`share_x`).
        let subgroups = has_sg && (tier >= Tier::T2 || (!has_f16 && opts.max_tier.is_none()));
        if subgroups {
            required |= wgpu::Features::SUBGROUP;
        }
        // Timestamps let `wisp bench` time each op of a step (natively; browsers gate them).
        let timestamps = feats.contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            required |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wisp"),
                required_features: required,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(match reason {
                    wgpu::DeviceLostReason::Destroyed => {
                        "the device was destroyed (device.destroy(), or the engine was unloaded)"
                            .to_string()
                    }
                    _ if msg.is_empty() => {
                        "the driver or the browser took the device away (a reset, a crash, or a \
                         tab in the background)"
                            .to_string()
                    }
                    _ => msg,
                });
            }
        });

        let is_software = info.device_type == wgpu::DeviceType::Cpu
            || ["llvmpipe", "lavapipe", "swiftshader", "warp", "software"]
                .iter()
                .any(|s| info.name.to_lowercase().contains(s));
        let adapter_max_binding = limits.max_storage_buffer_binding_size;
        let max_binding = opts
            .max_binding
            .map_or(adapter_max_binding, |f| f.min(adapter_max_binding));
        let family = opts.family.unwrap_or(if is_software {
            KernelFamily::Row
        } else {
            KernelFamily::Workgroup
        });
        let caps = Capabilities {
            adapter: AdapterSummary {
                name: info.name.clone(),
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: info.driver.clone(),
                driver_info: info.driver_info.clone(),
            },
            shader_f16: has_f16,
            subgroups,
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
            max_binding,
            adapter_max_binding,
            max_buffer_size: limits.max_buffer_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations: limits.max_compute_invocations_per_workgroup,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            min_storage_offset_alignment: limits.min_storage_buffer_offset_alignment,
            uniform_align: limits.min_uniform_buffer_offset_alignment,
            dot4: new_instance()
                .wgsl_language_features()
                .contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct),
            timestamps,
            tier,
            family,
            prefill_family: family,
            weight_textures: if opts.weight_textures == Some(true) {
                u64::MAX
            } else {
                0
            },
            weights_forced: opts.weight_textures.is_some(),
            is_software,
            rows8: opts.rows8.unwrap_or(family == KernelFamily::Row),
            rows8_forced: opts.rows8,
        };
        Ok(Gpu {
            device,
            queue,
            caps,
            pipelines: Mutex::new(HashMap::new()),
            custom: Mutex::new(HashMap::new()),
            step_cache: Default::default(),
            errors,
            lost,
        })
    }

    /// Why the device was lost, if it was. Natively, a non-blocking poll first lets wgpu run
    /// the lost callback for a loss that happened since the last poll.
    pub fn lost_reason(&self) -> Option<String> {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// `e`, or [`GpuError::DeviceLost`] with its reason when the device is gone: what fails after
    /// a loss (a map, an upload into an invalid buffer) reports the loss, not its symptom.
    pub fn explain(&self, e: GpuError) -> GpuError {
        match e {
            GpuError::DeviceLost(_) => e,
            other => self.lost_reason().map_or(other, GpuError::DeviceLost),
        }
    }

    /// [`check`](Self::check) after a non-blocking poll, so that a loss since the last poll is
    /// seen: for uploads, which no blocking wait follows (a step's readback waits, and that
    /// wait runs the lost callback).
    pub fn check_now(&self, what: &str) -> Result<(), GpuError> {
        if let Some(reason) = self.lost_reason() {
            return Err(GpuError::DeviceLost(reason));
        }
        self.check(what)
    }

    /// Turns errors the device reported since the last check into a [`GpuError`].
    pub fn check(&self, what: &str) -> Result<(), GpuError> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(GpuError::DeviceLost(reason));
        }
        let mut errs = self
            .errors
            .lock()
            .map_err(|_| GpuError::DeviceLost("error sink poisoned".into()))?;
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        drop(errs);
        Err(self.explain(GpuError::Validation {
            what: what.to_string(),
            message,
        }))
    }

    /// Runs later matvecs and matmuls with the kernel family `family` (tests run both families).
    pub fn set_family(&mut self, family: KernelFamily) {
        self.caps.family = family;
        self.caps.prefill_family = family;
        self.caps.rows8 = self
            .caps
            .rows8_forced
            .unwrap_or(family == KernelFamily::Row);
    }

    /// Uploads later weights of every type to textures (`true`) or storage buffers: tests run
    /// both. Weights already uploaded keep theirs (each kernel is compiled for its weight's store).
    pub fn set_weight_textures(&mut self, on: bool) {
        self.set_texture_types(if on { u64::MAX } else { 0 });
    }

    /// Uploads later weights of the types in `mask` (bit `ty.0`) to textures, the rest to buffers.
    pub fn set_texture_types(&mut self, mask: u64) {
        self.caps.weight_textures = mask;
    }

    /// Uploads later repacked weights with rows interleaved by eight (`true`) or in GGUF's row
    /// order, whatever the family: tests run both with both families.
    pub fn set_rows8(&mut self, on: bool) {
        self.caps.rows8 = on;
    }

    /// Runs later matmuls (prefill) with the kernel family `family`; matvecs keep theirs.
    pub fn set_prefill_family(&mut self, family: KernelFamily) {
        self.caps.prefill_family = family;
    }
}

impl Gpu {
    /// Runs later kernels at a lower tier than the device's (tests cover every tier on one device).
    /// A tier above the device's is refused.
    pub fn set_tier(&mut self, tier: Tier) -> Result<(), GpuError> {
        let f = self.device.features();
        let device_tier = if f.contains(wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16) {
            Tier::T2
        } else if f.contains(wgpu::Features::SHADER_F16) {
            Tier::T1
        } else {
            Tier::T0
        };
        if tier > device_tier {
            return Err(GpuError::BadSetting {
                name: "tier".into(),
                value: format!("{tier:?}"),
                reason: format!("the device supports at most {device_tier:?}"),
            });
        }
        self.caps.tier = tier;
        Ok(())
    }

    /// Uses (or not) WGSL's `dot4I8Packed` in the `fast` kernels; `true` is refused where the
    /// shader compiler lacks it. Tests run both variants.
    pub fn set_dot4(&mut self, on: bool) -> Result<(), GpuError> {
        let has = new_instance()
            .wgsl_language_features()
            .contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
        if on && !has {
            return Err(GpuError::BadSetting {
                name: "dot4".into(),
                value: "on".into(),
                reason: "the WGSL compiler lacks packed_4x8_integer_dot_product".into(),
            });
        }
        self.caps.dot4 = on;
        Ok(())
    }

    /// Treats the binding limit as `bytes` (at most the adapter's) for buffers made from now on.
    pub fn set_max_binding(&mut self, bytes: u64) {
        self.caps.max_binding = bytes.min(self.caps.adapter_max_binding);
    }
}
