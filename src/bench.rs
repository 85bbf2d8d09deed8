//! Kernel benchmarks: the adapter's read roofline and each format's matvec and matmul, timed in
//! the same run so results are ratios on the same adapter; and the measurement that picks a
//! model's kernel family ([`FamilyProbe`]), natively and in the browser.

use crate::gguf::Gguf;
use crate::gpu::{Encoder, Gpu, GpuError, GpuWeight, KernelFamily};
use crate::ops::{bandwidth, matmul, matvec};
use crate::quant::GgmlType;

/// Wall time of the fastest of `iters` runs of `record` (each its own submission, waited on).
pub async fn best_time<F>(gpu: &Gpu, iters: usize, mut record: F) -> Result<f64, GpuError>
where
    F: AsyncFnMut(&mut Encoder<'_>) -> Result<(), GpuError>,
{
    let mut best = f64::INFINITY;
    // One warm-up run compiles pipelines and faults memory in.
    for i in 0..=iters {
        let mut enc = Encoder::new(gpu);
        record(&mut enc).await?;
        let t = now_s();
        enc.submit();
        gpu.done().await?;
        let dt = now_s() - t;
        if i > 0 {
            best = best.min(dt);
        }
    }
    gpu.check("benchmark")?;
    Ok(best)
}

/// Seconds from an arbitrary start: `Instant` natively, `performance.now()` in a browser (a
/// window or a worker; `Date.now()` where it is missing).
fn now_s() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .filter(|p| !p.is_undefined());
        let now = perf.as_ref().and_then(|p| {
            js_sys::Reflect::get(p, &"now".into())
                .ok()?
                .dyn_into::<js_sys::Function>()
                .ok()?
                .call0(p)
                .ok()?
                .as_f64()
        });
        now.unwrap_or_else(js_sys::Date::now) / 1e3
    }
}

/// The adapter's measured read bandwidth: the faster of the two read shapes, in GB/s.
pub struct Roofline {
    pub gbs: f64,
    pub shape: bandwidth::ReadShape,
    pub bytes: u64,
}

/// Measures the read roofline over a buffer of about `bytes` (clamped to one binding).
pub async fn roofline(gpu: &Gpu, bytes: u64, iters: usize) -> Result<Roofline, GpuError> {
    let bytes = bytes.min(gpu.caps.max_binding) / (4 * 4 * u64::from(bandwidth::READ_INVOCATIONS))
        * (4 * 4 * u64::from(bandwidth::READ_INVOCATIONS));
    let src = gpu.storage("roofline src", bytes);
    let pattern: Vec<u8> = (0..(1usize << 20))
        .map(|i| ((i * 2654435761usize) >> 13) as u8)
        .collect();
    let mut off = 0u64;
    while off < bytes {
        let n = (bytes - off).min(pattern.len() as u64) as usize;
        gpu.queue.write_buffer(&src, off, &pattern[..n]);
        off += n as u64;
    }
    let sink = gpu.storage("roofline sink", u64::from(bandwidth::READ_INVOCATIONS) * 4);
    let words = (bytes / 4) as u32;
    let mut best: Option<Roofline> = None;
    for shape in [
        bandwidth::ReadShape::Contiguous,
        bandwidth::ReadShape::Interleaved,
    ] {
        let t = best_time(gpu, iters, async |enc| {
            bandwidth::encode_read(gpu, enc, &src, words, &sink, shape).await
        })
        .await?;
        let gbs = bytes as f64 / t / 1e9;
        if best.as_ref().is_none_or(|b| gbs > b.gbs) {
            best = Some(Roofline { gbs, shape, bytes });
        }
    }
    best.ok_or_else(|| GpuError::Readback("no roofline measurement".into()))
}

/// The adapter's measured peak of f32 multiply-adds, in GFLOP/s (2 flops per FMA).
pub async fn alu_peak(gpu: &Gpu, iters: usize) -> Result<f64, GpuError> {
    let src = gpu.storage_from(
        "alu operands",
        &[
            0.999, 0.999, 0.999, 0.999, 0.5, 0.5, 0.5, 0.5, 1.0, 2.0, 3.0, 4.0,
        ],
    );
    let sink = gpu.storage("alu sink", u64::from(bandwidth::READ_INVOCATIONS) * 4);
    let t = best_time(gpu, iters, async |enc| {
        bandwidth::encode_alu(gpu, enc, &src, &sink).await
    })
    .await?;
    let fmas = f64::from(bandwidth::READ_INVOCATIONS) * f64::from(bandwidth::ALU_STEPS) * 16.0;
    Ok(2.0 * fmas / t / 1e9)
}

/// One kernel's measurement.
pub struct KernelResult {
    pub ty: GgmlType,
    pub op: &'static str,
    pub family: &'static str,
    pub seconds: f64,
    pub weight_bytes: u64,
    pub gbs: f64,
    pub gflops: f64,
}

/// Times matvec over `rows` × `k` weights of type `ty` with the family `gpu` has chosen, at
/// `precision` (`fast`: x is quantized once before timing, as a model shares it between
/// matrices; formats without an integer kernel run exactly).
pub async fn matvec(
    gpu: &Gpu,
    ty: GgmlType,
    rows: u64,
    k: u64,
    iters: usize,
    precision: matvec::Precision,
) -> Result<KernelResult, GpuError> {
    matvec_spread(gpu, StepShape::plain(ty, rows, k), iters, precision, 0).await
}

/// [`matvec`] over as many copies of the weights as make `min_bytes`, one after another in one
/// submission (the time is per copy): a small matrix is then read from memory, as in a model's
/// decode step, and not from a CPU adapter's cache, and one submission's fixed cost is shared.
async fn matvec_spread(
    gpu: &Gpu,
    shape: StepShape,
    iters: usize,
    precision: matvec::Precision,
    min_bytes: u64,
) -> Result<KernelResult, GpuError> {
    let StepShape { ty, rows, k, .. } = shape;
    let data = crate::ops::synth::random_weight(ty, rows, k, 0x5eed ^ u64::from(ty.0));
    let copies = min_bytes.div_ceil(data.len().max(1) as u64).max(1);
    let ws = (0..copies)
        .map(|_| GpuWeight::upload(gpu, &format!("bench {ty}"), ty, k, rows, &data))
        .collect::<Result<Vec<_>, _>>()?;
    let xs: Vec<f32> = (0..k).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let x = gpu.storage_from("x", &xs);
    let y = gpu.storage("y", rows * 4);
    let q = matvec::X8::new(gpu, k as u32);
    let input = match precision {
        matvec::Precision::Exact => matvec::Input::F32(&x),
        matvec::Precision::Fast => {
            let mut enc = crate::gpu::Encoder::new(gpu);
            matvec::encode_quantize_x8(gpu, &mut enc, &x, k as u32, &q).await?;
            enc.submit();
            matvec::Input::X8 { x: &x, q: &q }
        }
    };
    let t = best_time(gpu, iters, async |enc| {
        for w in &ws {
            // A fused gate+up weight runs as the model runs it: the GLU kernel where it takes
            // the weight, else the plain matvec (the model then adds the activation).
            let fused = match shape.glu {
                Some(gelu) => matvec::encode_glu(gpu, enc, w, input, &y, gelu).await?,
                None => false,
            };
            if !fused {
                matvec::encode_input(gpu, enc, w, input, &y).await?;
            }
        }
        Ok(())
    })
    .await?
        / copies as f64;
    Ok(KernelResult {
        ty,
        op: match precision {
            matvec::Precision::Exact => "matvec",
            matvec::Precision::Fast => "matvec_fast",
        },
        family: gpu.caps.family.name(),
        seconds: t,
        weight_bytes: data.len() as u64,
        gbs: data.len() as f64 / t / 1e9,
        gflops: 2.0 * rows as f64 * k as f64 / t / 1e9,
    })
}

/// Times matmul over `rows` × `k` weights with `cols` columns.
pub async fn matmul(
    gpu: &Gpu,
    ty: GgmlType,
    rows: u64,
    k: u64,
    cols: u32,
    iters: usize,
) -> Result<KernelResult, GpuError> {
    let data = crate::ops::synth::random_weight(ty, rows, k, 0xfeed ^ u64::from(ty.0));
    let w = GpuWeight::upload(gpu, &format!("bench {ty}"), ty, k, rows, &data)?;
    let x = gpu.storage_from("X", &vec![0.25f32; k as usize * cols as usize]);
    let y = gpu.storage("Y", rows * u64::from(cols) * 4);
    let t = best_time(gpu, iters, async |enc| {
        matmul::encode(gpu, enc, &w, &x, &y, cols).await
    })
    .await?;
    Ok(KernelResult {
        ty,
        op: "matmul",
        family: gpu.caps.prefill_family.name(),
        seconds: t,
        weight_bytes: data.len() as u64,
        gbs: data.len() as f64 / t / 1e9,
        gflops: 2.0 * rows as f64 * k as f64 * f64::from(cols) / t / 1e9,
    })
}

/// Weight bytes each matrix of [`time_families`] is spread over: more than a CPU adapter's
/// last-level cache.
const SPREAD_BYTES: u64 = 16 << 20;

/// One matrix of a decode step as a [`FamilyProbe`] times it: `rows` × `k` of `ty`, counted
/// `count` times a step; `glu`: a fused gate+up weight (gate rows then up rows) that the model
/// runs through the GLU kernel (`Some(gelu)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepShape {
    pub ty: GgmlType,
    pub rows: u64,
    pub k: u64,
    pub count: f64,
    pub glu: Option<bool>,
}

impl StepShape {
    /// A plain matvec's shape, counted once.
    pub fn plain(ty: GgmlType, rows: u64, k: u64) -> StepShape {
        StepShape {
            ty,
            rows,
            k,
            count: 1.0,
            glu: None,
        }
    }
}

/// Estimates a decode step's matvec time with each kernel family from a few matrices:
/// each of `shapes` is timed (random weights, best of `iters` after a warm-up) and counted its
/// `count` times. Returns `(family, seconds)` for both, fastest first;
/// `gpu`'s family is restored. A family stops being timed once it is slower than the one before
/// (its time is then a lower bound): on a software adapter the slow family is slow by a lot.
pub async fn time_families(
    gpu: &mut Gpu,
    shapes: &[StepShape],
    iters: usize,
    precision: matvec::Precision,
) -> Result<Vec<(KernelFamily, f64)>, GpuError> {
    let t = time_families_by_shape(gpu, shapes, iters, precision).await?;
    Ok(fastest_per_family(&t))
}

/// Each family's fastest candidate of [`time_families_by_shape`] (fastest first).
fn fastest_per_family(
    by_shape: &[(KernelFamily, bool, f64, Vec<f64>)],
) -> Vec<(KernelFamily, f64)> {
    let mut out: Vec<(KernelFamily, f64)> = Vec::new();
    for &(f, _, s, _) in by_shape {
        if !out.iter().any(|o| o.0 == f) {
            out.push((f, s));
        }
    }
    out
}

/// [`time_families`] per candidate: the row family with its weights' rows interleaved by eight
/// (`gpu::ROWS8`) and in GGUF's order (unless `WISP_LAYOUT` chose), and the workgroup family,
/// each as `(family, rows interleaved, weighted seconds, per shape)`, fastest first (the per-shape
/// times complete for the fastest). `gpu`'s family and layout are restored.
///
/// The interleaved rows are timed only where 8 lanes share x's loads (`Capabilities::share_x`):
/// their row kernel takes 2 rows per invocation and counts on 8-lane broadcasts of x. On
/// SwiftShader (4 lanes) they measured 1.3–1.9× slower than GGUF's order, so its first load
/// does not spend time on them.
async fn time_families_by_shape(
    gpu: &mut Gpu,
    shapes: &[StepShape],
    iters: usize,
    precision: matvec::Precision,
) -> Result<Vec<(KernelFamily, bool, f64, Vec<f64>)>, GpuError> {
    let (before, before_rows8) = (gpu.caps.family, gpu.caps.rows8);
    let candidates: Vec<(KernelFamily, bool)> = match gpu.caps.rows8_forced {
        Some(r) => vec![(KernelFamily::Row, r), (KernelFamily::Workgroup, r)],
        None if gpu.caps.share_x() >= 8 => vec![
            (KernelFamily::Row, true),
            (KernelFamily::Row, false),
            (KernelFamily::Workgroup, false),
        ],
        None => vec![(KernelFamily::Row, false), (KernelFamily::Workgroup, false)],
    };
    let mut out: Vec<(KernelFamily, bool, f64, Vec<f64>)> = Vec::new();
    for (family, rows8) in candidates {
        gpu.set_family(family);
        gpu.set_rows8(rows8);
        let mut total = 0.0;
        let mut each = Vec::new();
        let leader = out.iter().map(|o| o.2).fold(f64::INFINITY, f64::min);
        for &shape in shapes {
            // Already slower than the family before it: the rest cannot change the order.
            if total > leader {
                break;
            }
            match matvec_spread(gpu, shape, iters, precision, SPREAD_BYTES).await {
                Ok(r) => {
                    total += shape.count * r.seconds;
                    each.push(shape.count * r.seconds);
                }
                Err(e) => {
                    gpu.set_family(before);
                    gpu.set_rows8(before_rows8);
                    return Err(e);
                }
            }
        }
        gpu.set_family(before);
        gpu.set_rows8(before_rows8);
        out.push((family, rows8, total, each));
    }
    out.sort_by(|a, b| a.2.total_cmp(&b.2));
    Ok(out)
}

/// Times a decode step's matvecs (`shapes` as in [`time_families`]) with `gpu`'s family and
/// every weight in a texture (`gpu::WeightStore`), beside `buffer`: the same shapes' weighted
/// seconds from storage buffers (as [`time_families`] measured them). Returns, per block type,
/// `(ty, buffer seconds, texture seconds)` summed over its shapes; `gpu`'s texture choice is
/// restored.
pub async fn time_weight_stores(
    gpu: &mut Gpu,
    shapes: &[StepShape],
    buffer: &[f64],
    iters: usize,
    precision: matvec::Precision,
) -> Result<Vec<(GgmlType, f64, f64)>, GpuError> {
    let before = gpu.caps.weight_textures;
    let mut out: Vec<(GgmlType, f64, f64)> = Vec::new();
    for (&shape, &b) in shapes.iter().zip(buffer) {
        let ty = shape.ty;
        gpu.set_weight_textures(true);
        let r = matvec_spread(gpu, shape, iters, precision, SPREAD_BYTES).await;
        gpu.set_texture_types(before);
        let t = shape.count * r?.seconds;
        match out.iter_mut().find(|o| o.0 == ty) {
            Some(o) => {
                o.1 += b;
                o.2 += t;
            }
            None => out.push((ty, b, t)),
        }
    }
    Ok(out)
}

/// Columns of the matmul a [`FamilyProbe`] times for prefill.
const PROBE_COLS: u32 = 32;

/// Times the matmul (prefill) of both kernel families on `(ty, rows, k)` with [`PROBE_COLS`]
/// columns (best of `iters` after a warm-up). Returns `(family, seconds)` for both, fastest
/// first; `gpu`'s prefill family is restored.
pub async fn time_prefill_families(
    gpu: &mut Gpu,
    (ty, rows, k): (GgmlType, u64, u64),
    iters: usize,
) -> Result<Vec<(KernelFamily, f64)>, GpuError> {
    let before = gpu.caps.prefill_family;
    let mut out = Vec::new();
    for family in [KernelFamily::Row, KernelFamily::Workgroup] {
        gpu.set_prefill_family(family);
        let r = matmul(gpu, ty, rows, k, PROBE_COLS, iters).await;
        gpu.set_prefill_family(before);
        out.push((family, r?.seconds));
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    Ok(out)
}

/// How a model's kernel families are picked by measuring, not by device type. For decode, both
/// families time a decode step's matrices on random weights of the model's block types, at the
/// precision it will run (a fraction of a second on a real GPU): every distinct layer matrix
/// (type and shape), counted as often as the layers hold it, and the output projection (at most
/// 16 384 of its rows, scaled up). For prefill, chosen on its own (the faster matvec family need
/// not have the faster matmul), both families' matmuls time the layer matrix that holds the
/// most of a layer's bytes, with 32 columns.
///
/// Then, with the faster decode family, each block type's matrices are timed again with their
/// weights in storage buffers and in textures, and the types that run faster from textures are
/// uploaded to textures (unless `WISP_WEIGHTS` chose; on SwiftShader a texture load costs less
/// than a storage load for some formats, not all). The prefill matmuls are timed with that choice.
///
/// The caller keeps the result under [`key`](Self::key) (the adapter, its driver and driver version, backend and
/// tier, the shapes, the precision and a hash of the kernels' sources): in the cache folder
/// natively, in IndexedDB in the browser. A failed measurement keeps the default family: the choice is an optimization, never a
/// reason not to run.
pub struct FamilyProbe {
    pub key: String,
    shapes: Vec<StepShape>,
    /// The layer matrix the prefill matmuls are timed on.
    prefill_shape: (GgmlType, u64, u64),
    precision: matvec::Precision,
}

/// What a [`FamilyProbe`] measured: the faster family for decode and each family's estimated
/// matvec time of a decode step, and the faster family for prefill and each family's matmul time.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyChoice {
    pub family: KernelFamily,
    pub step_matvec_ms: Vec<(KernelFamily, f64)>,
    /// Weights stored with rows interleaved by eight (`gpu::ROWS8`): the row family's faster
    /// layout, measured beside GGUF's order (`row_layout_ms`: interleaved, GGUF's order; the
    /// second is a lower bound where it stopped early; `None` when `WISP_LAYOUT` chose, or where
    /// fewer than 8 lanes share x and only GGUF's order is timed).
    pub rows8: bool,
    pub row_layout_ms: Option<(f64, f64)>,
    /// Block types whose weights go to textures (`Capabilities::weight_textures`).
    pub texture_types: Vec<GgmlType>,
    /// Per block type, its matvecs' time in a decode step from buffers and from textures
    /// (empty when `WISP_WEIGHTS` chose).
    pub weights_ms: Vec<(GgmlType, f64, f64)>,
    pub prefill_family: KernelFamily,
    pub prefill_matmul_ms: Vec<(KernelFamily, f64)>,
}

impl FamilyProbe {
    /// `None` when the model has no matrix to time (nothing to choose).
    pub fn new(gpu: &Gpu, g: &Gguf, precision: matvec::Precision) -> Option<FamilyProbe> {
        let matrix = |t: &&crate::gguf::TensorInfo| t.dims.len() == 2 && t.ty.is_supported();
        // Every distinct layer matrix (type and shape), counted as often as the layers hold it.
        // A layer's ffn_gate and ffn_up of one type and shape are one fused gate+up weight in
        // the model (`model::weights`), run by the GLU kernel: timed so.
        let gelu = g
            .get_str("general.architecture")
            .is_some_and(|a| a.starts_with("gemma"));
        let mut shapes: Vec<StepShape> = Vec::new();
        for t in g
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("blk."))
            .filter(matrix)
        {
            let (ty, rows, k) = (t.ty, t.rows(), t.row_len());
            let pair = |a: &str, b: &str| {
                let other = t.name.strip_suffix(a).map(|p| format!("{p}{b}"));
                other
                    .and_then(|o| g.tensor(&o))
                    .is_some_and(|o| (o.ty, o.rows(), o.row_len()) == (ty, rows, k))
            };
            let shape = if pair("ffn_gate.weight", "ffn_up.weight") {
                StepShape {
                    rows: 2 * rows,
                    glu: Some(gelu),
                    ..StepShape::plain(ty, rows, k)
                }
            } else if pair("ffn_up.weight", "ffn_gate.weight") {
                // (Counted with its gate.)
                continue;
            } else {
                StepShape::plain(ty, rows, k)
            };
            match shapes
                .iter_mut()
                .find(|s| (s.ty, s.rows, s.k, s.glu) == (shape.ty, shape.rows, shape.k, shape.glu))
            {
                Some(s) => s.count += 1.0,
                None => shapes.push(shape),
            }
        }
        // The layer matrix holding the most bytes over the layers: most of a prefill's work.
        let prefill_shape = shapes
            .iter()
            .max_by(|a, b| {
                let bytes = |s: &StepShape| {
                    crate::quant::row_bytes(s.ty, s.k).unwrap_or(0) as f64 * s.rows as f64 * s.count
                };
                bytes(a).total_cmp(&bytes(b))
            })
            .map(|s| (s.ty, s.rows, s.k))?;
        let out = g
            .tensor("output.weight")
            .or_else(|| g.tensor("token_embd.weight"))
            .filter(matrix)?;
        let out_rows = out.rows().min(16_384);
        shapes.push(StepShape {
            count: out.rows() as f64 / out_rows as f64,
            ..StepShape::plain(out.ty, out_rows, out.row_len())
        });
        let mut desc: Vec<String> = shapes
            .iter()
            .map(|s| match s.glu {
                Some(_) => format!("{} {}x{} glu x{}", s.ty, s.rows, s.k, s.count),
                None => format!("{} {}x{} x{}", s.ty, s.rows, s.k, s.count),
            })
            .collect();
        desc.sort();
        let c = &gpu.caps;
        // The kernels' sources are part of the key: a new build measures again.
        // So is the driver's version: Mesa 22.3 and 25.0 report the same adapter name, and
        // what wins on one loses on the other.
        let key = format!(
            "{} | {} {} | {} | {:?} | {} | {} | kernels {:016x}",
            c.adapter.name,
            c.adapter.driver,
            c.adapter.driver_info,
            c.adapter.backend,
            c.tier,
            desc.join(" + "),
            precision.name(),
            crate::gpu::kernels_hash()
        );
        Some(FamilyProbe {
            key,
            shapes,
            prefill_shape,
            precision,
        })
    }

    /// Times both families (best of two runs after a warm-up each), then the faster one with
    /// every weight in textures; `gpu`'s families and weight stores are restored.
    pub async fn measure(&self, gpu: &mut Gpu) -> Result<FamilyChoice, GpuError> {
        let (before_family, before_prefill, before_textures) = (
            gpu.caps.family,
            gpu.caps.prefill_family,
            gpu.caps.weight_textures,
        );
        let forced = gpu.caps.weights_forced;
        // The families are timed with every weight in buffers unless `WISP_WEIGHTS` chose.
        if !forced {
            gpu.set_texture_types(0);
        }
        let by_shape = time_families_by_shape(gpu, &self.shapes, 2, self.precision).await;
        gpu.set_texture_types(before_textures);
        let by_shape = by_shape?;
        let family = by_shape.first().map_or(gpu.caps.family, |t| t.0);
        let rows8 = by_shape.first().map_or(gpu.caps.rows8, |t| t.1);
        let buffer_s = by_shape.first().map(|t| t.3.clone()).unwrap_or_default();
        let row_ms = |r: bool| {
            by_shape
                .iter()
                .find(|t| t.0 == KernelFamily::Row && t.1 == r)
                .map(|t| t.2 * 1e3)
        };
        let row_layout_ms = row_ms(true).zip(row_ms(false));
        let times = fastest_per_family(&by_shape);
        let before_rows8 = gpu.caps.rows8;
        let mut weights_ms = Vec::new();
        if !forced {
            gpu.set_family(family);
            gpu.set_rows8(rows8);
            let stores = time_weight_stores(gpu, &self.shapes, &buffer_s, 2, self.precision).await;
            gpu.set_family(before_family);
            gpu.set_rows8(before_rows8);
            gpu.set_prefill_family(before_prefill);
            weights_ms = stores?
                .into_iter()
                .map(|(ty, b, t)| (ty, b * 1e3, t * 1e3))
                .collect();
        }
        let texture_types: Vec<GgmlType> = if forced {
            gpu.caps.texture_types()
        } else {
            weights_ms
                .iter()
                .filter(|w| w.2 < w.1)
                .map(|w| w.0)
                .collect()
        };
        // The prefill matmuls read the weights from where they will be, in their layout.
        gpu.set_texture_types(type_mask(&texture_types));
        gpu.set_rows8(rows8);
        let prefill = time_prefill_families(gpu, self.prefill_shape, 2).await;
        gpu.set_texture_types(before_textures);
        gpu.set_rows8(before_rows8);
        let prefill = prefill?;
        let prefill_family = prefill.first().map_or(gpu.caps.prefill_family, |t| t.0);
        let ms = |v: Vec<(KernelFamily, f64)>| v.into_iter().map(|(f, s)| (f, s * 1e3)).collect();
        Ok(FamilyChoice {
            family,
            step_matvec_ms: ms(times),
            rows8,
            row_layout_ms,
            texture_types,
            weights_ms,
            prefill_family,
            prefill_matmul_ms: ms(prefill),
        })
    }
}

/// The bit mask of `types` (`Capabilities::weight_textures`).
fn type_mask(types: &[GgmlType]) -> u64 {
    types
        .iter()
        .filter(|t| t.0 < 64)
        .fold(0, |m, t| m | 1u64 << t.0)
}

impl FamilyChoice {
    /// `{"family": "row", "step_matvec_ms": {"row": 12.5, "workgroup": 30.1},
    /// "textures": ["Q8_0"], "weights_ms": {"Q8_0": {"buffer": 9.1, "texture": 7.0}, …},
    /// "prefill_family": "row", "prefill_matmul_ms": {…}}`: what the caches keep.
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |v: &[(KernelFamily, f64)]| -> serde_json::Map<String, serde_json::Value> {
            v.iter()
                .map(|(f, ms)| (f.name().to_string(), serde_json::json!(ms)))
                .collect()
        };
        let weights_ms: serde_json::Map<String, serde_json::Value> = self
            .weights_ms
            .iter()
            .map(|(ty, b, t)| {
                (
                    ty.to_string(),
                    serde_json::json!({"buffer": b, "texture": t}),
                )
            })
            .collect();
        let textures: Vec<String> = self.texture_types.iter().map(|t| t.to_string()).collect();
        serde_json::json!({
            "family": self.family.name(),
            "step_matvec_ms": ms(&self.step_matvec_ms),
            "rows8": self.rows8,
            "row_layout_ms": self.row_layout_ms.map(|(i, g)| serde_json::json!({"rows8": i, "gguf": g})),
            "textures": textures,
            "weights_ms": weights_ms,
            "prefill_family": self.prefill_family.name(),
            "prefill_matmul_ms": ms(&self.prefill_matmul_ms),
        })
    }

    /// Runs `gpu`'s later matvecs and matmuls with the families and weight stores a cached
    /// [`to_json`](Self::to_json) value names; false (and `gpu` unchanged) when it does not name
    /// them all.
    pub fn apply_cached(v: &serde_json::Value, gpu: &mut Gpu) -> bool {
        let family = |k: &str| match v.get(k)?.as_str()? {
            "row" => Some(KernelFamily::Row),
            "workgroup" => Some(KernelFamily::Workgroup),
            _ => None,
        };
        let textures = v.get("textures").and_then(|t| t.as_array()).and_then(|a| {
            a.iter()
                .map(|n| {
                    let n = n.as_str()?;
                    GgmlType::SUPPORTED.into_iter().find(|t| t.to_string() == n)
                })
                .collect::<Option<Vec<GgmlType>>>()
        });
        let rows8 = v.get("rows8").and_then(|r| r.as_bool());
        match (family("family"), family("prefill_family"), textures, rows8) {
            (Some(f), Some(pf), Some(t), Some(r)) => {
                gpu.set_family(f);
                gpu.set_prefill_family(pf);
                if gpu.caps.rows8_forced.is_none() {
                    gpu.set_rows8(r);
                }
                if !gpu.caps.weights_forced {
                    gpu.set_texture_types(type_mask(&t));
                }
                true
            }
            _ => false,
        }
    }

    /// Runs `gpu`'s later matvecs and matmuls with the chosen families and weight stores.
    pub fn apply(&self, gpu: &mut Gpu) {
        gpu.set_family(self.family);
        gpu.set_prefill_family(self.prefill_family);
        if gpu.caps.rows8_forced.is_none() {
            gpu.set_rows8(self.rows8);
        }
        if !gpu.caps.weights_forced {
            gpu.set_texture_types(type_mask(&self.texture_types));
        }
    }

    /// "decode row (row 12.5 ms, workgroup 30.1 ms), prefill row (…)".
    pub fn report(&self) -> String {
        let ms = |v: &[(KernelFamily, f64)]| {
            v.iter()
                .map(|(f, ms)| format!("{} {ms:.1} ms", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let weights = self
            .weights_ms
            .iter()
            .map(|(ty, b, t)| format!("{ty} {b:.1} ms from buffers, {t:.1} ms from textures"))
            .collect::<Vec<_>>()
            .join("; ");
        let textures = match self.texture_types.as_slice() {
            [] => "none".to_string(),
            t => t
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let layout = match self.row_layout_ms {
            Some((i, g)) => format!(
                " (row family: {i:.1} ms with rows interleaved by 8, {g:.1} ms in GGUF's order)"
            ),
            None => String::new(),
        };
        format!(
            "decode {} (matvecs of a step: {}), rows {}{layout}, weights in textures: \
             {textures}{}, prefill {} (a {PROBE_COLS}-column matmul: {})",
            self.family.name(),
            ms(&self.step_matvec_ms),
            if self.rows8 {
                "interleaved by 8"
            } else {
                "in GGUF's order"
            },
            if weights.is_empty() {
                String::new()
            } else {
                format!(" ({weights})")
            },
            self.prefill_family.name(),
            ms(&self.prefill_matmul_ms)
        )
    }
}
