//! Attention over a preallocated KV cache: [`KvCache`] and [`store_kv`], the tiled flash-style
//! [`prefill`] kernel, the split-K [`decode`] kernel, [`attend`] (store, then the right one of
//! the two), and the f64 CPU reference [`attention_ref`] with the error bound the tests use.
//!
//! Layouts (row-major, innermost last):
//! - Q and the output O: `[token][head][head_dim]` f32; decode: `[head][head_dim]`.
//! - New K and V given to [`store_kv`]: `[token][kv_head][head_dim]` f32.
//! - The cache, per layer, one buffer for K and one for V: `[kv_head][position][head_dim]`,
//!   f32 when the cache was created at tier T0 and f16 from T1 (the GPU stores f16 pairs in u32
//!   words with `pack2x16float`, saturating at ±65504). One buffer per layer keeps every binding
//!   small (Gemma 3 270M, 32k positions: 16 MiB per buffer at f16) and lets layers grow
//!   independently of the binding limit.
//!
//! Masking (llama.cpp's rule): a key at position `pk` is visible to a query at `pq` iff
//! `pk <= pq` and, with a sliding window `w > 0`, `pq - pk < w`. Query head `h` reads kv head
//! `h / (n_heads / n_kv_heads)` (MHA, GQA and MQA alike).
//!
//! Both kernels keep, per query row, a running maximum, a running sum and an unnormalized output
//! (online softmax) in f32 and never materialize a score matrix; f16 is a storage format only.
//! See [`Tiles`] for how the work is cut and `shaders/attention_*.wgsl` for the kernels. At T2
//! the `T` lanes of a row sum partial scores with `subgroupShuffleXor` when `T` ≤ the minimum
//! subgroup size (assuming, as every known implementation does, that subgroups are runs of
//! consecutive `local_invocation_index`); otherwise through workgroup memory (two barriers).

use crate::gpu::Encoder;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::matvec::X8;
use super::{dispatch, grid};
use crate::gpu::{preprocess, unroll, Bind, Gpu, GpuError, Kernel, KernelFamily, KernelSpec, Tier};

const COMMON: &str = include_str!("../../shaders/attention_common.wgsl");
const KV: &str = include_str!("../../shaders/attention_kv.wgsl");
const PREFILL: &str = include_str!("../../shaders/attention_prefill.wgsl");
const PREFILL_ROWS: &str = include_str!("../../shaders/attention_prefill_rows.wgsl");
const DECODE: &str = include_str!("../../shaders/attention_decode.wgsl");
const REDUCE: &str = include_str!("../../shaders/attention_reduce.wgsl");
const STORE: &str = include_str!("../../shaders/attention_store.wgsl");
/// The cache's word type and `pack` (appended to every kernel that writes the cache).
pub(crate) const KV_PACK: &str = include_str!("../../shaders/kv_pack.wgsl");

/// Invocations per workgroup of every attention kernel.
pub const WORKGROUP: u32 = 64;
/// Workgroup memory the kernels plan with: WebGPU's default `maxComputeWorkgroupStorageSize`.
pub const SHARED_BYTES: u32 = 16384;
/// Largest supported head dimension (8 vec4s of q and of the output per lane, 8 lanes per row).
pub const MAX_HEAD_DIM: u32 = 256;
/// Keys per row and step of the decode kernel.
const DECODE_KEYS: u32 = 8;
/// Decode splits per head: at most this many, and at least this many keys per split.
const MAX_SPLITS: u32 = 64;
const MIN_KEYS_PER_SPLIT: u32 = 64;

/// Element type of a [`KvCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvType {
    F32,
    F16,
}

impl KvType {
    /// Bytes per element.
    pub fn bytes(self) -> u32 {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }
}

/// How the kernels cut the work for one head dimension. Everything follows from `head_dim` and
/// the 16 KiB of workgroup memory WebGPU guarantees; 64 invocations per workgroup.
///
/// | head_dim | lanes/row | rows | prefill keys/tile | prefill memory (subgroups) | decode memory |
/// |---|---|---|---|---|---|
/// | 64  | 2 | 32 | 18 | 15.75 KiB (9 KiB)  | 11.25 KiB |
/// | 128 | 4 | 16 | 12 | 15.75 KiB (12 KiB) | 10.6 KiB |
/// | 256 | 8 | 8  | 7  | 15.97 KiB (14 KiB) | 10.3 KiB |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    /// Lanes per query row (`T`, a power of two ≤ 8): lane `t` owns vec4s `t, t + T, …` of q and
    /// of the output, `head_dim / (4·T)` ≤ 8 of each, in registers. 2 for head_dim 64, 4 for
    /// 128, 8 for 256. A score is the sum of the `T` lanes' partial dot products.
    pub lanes: u32,
    /// Query rows per workgroup (`BR = 64 / T`): (token, head) pairs in prefill, (head, key lane)
    /// pairs in decode.
    pub rows: u32,
    /// Keys per K/V tile of the prefill kernel (`BC`), the most that fit beside the score
    /// scratch: 18 for head_dim 64, 12 for 128, 7 for 256.
    pub prefill_keys: u32,
    /// Keys per row and step of the decode kernel.
    pub decode_keys: u32,
}

impl Tiles {
    /// The tiling for `head_dim`, or `None` if the kernels cannot run it (it must split into
    /// at most 8 vec4s for each of at most 8 lanes: 32, 64, 80, 96, 112, 128, 160, 192, 256 …).
    pub fn for_head_dim(head_dim: u32) -> Option<Tiles> {
        if head_dim == 0 || head_dim > MAX_HEAD_DIM {
            return None;
        }
        let lanes = [1u32, 2, 4, 8]
            .into_iter()
            .find(|&t| head_dim.is_multiple_of(4 * t) && head_dim / (4 * t) <= 8)?;
        let rows = WORKGROUP / lanes;
        // K and V tiles (f32), partial scores [64 lanes][BC], scores [BR][BC].
        let per_key = 8 * head_dim + 4 * WORKGROUP + 4 * rows;
        let prefill_keys = (SHARED_BYTES / per_key).min(32);
        Some(Tiles {
            lanes,
            rows,
            prefill_keys,
            decode_keys: DECODE_KEYS,
        })
    }

    /// Workgroup memory of the prefill kernel without subgroups (with: the K/V tiles only).
    pub fn prefill_shared_bytes(&self, head_dim: u32) -> u32 {
        self.prefill_keys * (8 * head_dim + 4 * WORKGROUP + 4 * self.rows)
    }

    /// Workgroup memory of the decode kernel without subgroups: score scratch, and the rows'
    /// (m, l, o) for the final merge.
    pub fn decode_shared_bytes(&self, head_dim: u32) -> u32 {
        self.decode_keys * 4 * (WORKGROUP + self.rows) + self.rows * (4 * head_dim + 8)
    }
}

/// The dimensions of a [`KvCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    pub n_layers: u32,
    /// Positions per layer.
    pub ctx: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub dtype: KvType,
}

/// The K/V cache of every layer, preallocated for `ctx` positions.
///
/// Layer `i` has a K and a V buffer, each `[n_kv_heads][ctx][head_dim]` of [`KvType`]. The
/// cache remembers, per layer, how many positions were stored, and the attention ops refuse to
/// read positions that were not.
pub struct KvCache {
    shape: KvShape,
    tiles: Tiles,
    layers: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    filled: Vec<AtomicU32>,
    /// Decode partials, grown on demand and shared by all layers (dispatches run in order).
    partials: Mutex<Option<wgpu::Buffer>>,
}

fn shape_err(tensor: &str, detail: String) -> GpuError {
    GpuError::Shape {
        tensor: tensor.to_string(),
        detail,
    }
}

impl KvCache {
    /// A cache with f32 elements at tier T0 and f16 from T1 (the device's current tier).
    pub fn new(
        gpu: &Gpu,
        n_layers: u32,
        ctx: u32,
        n_kv_heads: u32,
        head_dim: u32,
    ) -> Result<KvCache, GpuError> {
        let dtype = if gpu.caps.tier >= Tier::T1 {
            KvType::F16
        } else {
            KvType::F32
        };
        KvCache::with_type(gpu, n_layers, ctx, n_kv_heads, head_dim, dtype)
    }

    /// A cache with the given element type (f16 caches work on every tier).
    pub fn with_type(
        gpu: &Gpu,
        n_layers: u32,
        ctx: u32,
        n_kv_heads: u32,
        head_dim: u32,
        dtype: KvType,
    ) -> Result<KvCache, GpuError> {
        let what = "kv cache";
        let tiles = Tiles::for_head_dim(head_dim).ok_or_else(|| {
            shape_err(
                what,
                format!("head_dim {head_dim} is not supported (a multiple of 4·lanes ≤ {MAX_HEAD_DIM}, e.g. 64, 128, 256)"),
            )
        })?;
        if n_layers == 0 || ctx == 0 || n_kv_heads == 0 {
            return Err(shape_err(
                what,
                format!("[{n_layers} layers][{n_kv_heads} kv heads][{ctx} positions] has no room"),
            ));
        }
        let bytes =
            u64::from(n_kv_heads) * u64::from(ctx) * u64::from(head_dim) * u64::from(dtype.bytes());
        let limit = gpu.caps.max_binding.min(gpu.caps.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::BindingTooLarge {
                what: format!("{what} layer ([{n_kv_heads}][{ctx}][{head_dim}] {dtype:?})"),
                bytes,
                limit,
            });
        }
        let layers = (0..n_layers)
            .map(|i| {
                (
                    gpu.storage(&format!("k cache {i}"), bytes),
                    gpu.storage(&format!("v cache {i}"), bytes),
                )
            })
            .collect();
        gpu.check_now("allocating the kv cache")?;
        Ok(KvCache {
            shape: KvShape {
                n_layers,
                ctx,
                n_kv_heads,
                head_dim,
                dtype,
            },
            tiles,
            layers,
            filled: (0..n_layers).map(|_| AtomicU32::new(0)).collect(),
            partials: Mutex::new(None),
        })
    }

    /// Its dimensions and element type.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// How the attention kernels tile its head dimension.
    pub fn tiles(&self) -> Tiles {
        self.tiles
    }

    /// The K and V buffers of `layer`.
    pub fn layer(&self, layer: u32) -> Result<&(wgpu::Buffer, wgpu::Buffer), GpuError> {
        self.layers.get(layer as usize).ok_or_else(|| {
            shape_err(
                "kv cache",
                format!("layer {layer} of a {}-layer cache", self.shape.n_layers),
            )
        })
    }

    /// Positions stored so far in `layer` (the highest position written, plus one).
    pub fn stored(&self, layer: u32) -> u32 {
        self.filled
            .get(layer as usize)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// Forgets every stored position (a new sequence); the buffers are kept.
    pub fn clear(&self) {
        for f in &self.filled {
            f.store(0, Ordering::Relaxed);
        }
    }

    /// Keeps only the first `n` positions of every layer (positions after them are rewritten
    /// by the next tokens).
    pub fn truncate(&self, n: u32) {
        for f in &self.filled {
            f.fetch_min(n, Ordering::Relaxed);
        }
    }

    /// Reads `layer` back as f32, `(k, v)`, each `[n_kv_heads][ctx][head_dim]`.
    pub async fn read_layer(
        &self,
        gpu: &Gpu,
        layer: u32,
    ) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let (k, v) = self.layer(layer)?;
        let n = u64::from(self.shape.n_kv_heads)
            * u64::from(self.shape.ctx)
            * u64::from(self.shape.head_dim);
        let bytes = n * u64::from(self.shape.dtype.bytes());
        let to_f32 = |b: Vec<u8>| -> Vec<f32> {
            match self.shape.dtype {
                KvType::F32 => bytemuck::pod_collect_to_vec(&b),
                KvType::F16 => b
                    .chunks_exact(2)
                    .map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32())
                    .collect(),
            }
        };
        let kb = gpu.read_bytes(k, bytes).await?;
        let vb = gpu.read_bytes(v, bytes).await?;
        Ok((to_f32(kb), to_f32(vb)))
    }

    /// Errors unless positions `[pos0, pos0 + n)` fit the context.
    fn check_room(&self, op: &str, pos0: u32, n: u32) -> Result<u32, GpuError> {
        match pos0.checked_add(n) {
            Some(end) if end <= self.shape.ctx => Ok(end),
            _ => Err(shape_err(
                op,
                format!(
                    "context full: {} positions, but {n} tokens at position {pos0} need {}",
                    self.shape.ctx,
                    u64::from(pos0) + u64::from(n)
                ),
            )),
        }
    }

    /// Checks that `n_tokens` new K and V rows (`k`, `v`: `[n_tokens][n_kv_heads][head_dim]`
    /// f32) fit at `pos0` of `layer`, and returns the end position and the layer's K and V
    /// buffers. A kernel that stores them calls [`mark_stored`](Self::mark_stored) once recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_target(
        &self,
        gpu: &Gpu,
        op: &str,
        layer: u32,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        pos0: u32,
        n_tokens: u32,
    ) -> Result<(u32, &wgpu::Buffer, &wgpu::Buffer), GpuError> {
        let end = self.check_room(op, pos0, n_tokens)?;
        let (kc, vc) = self.layer(layer)?;
        let floats =
            u64::from(n_tokens) * u64::from(self.shape.n_kv_heads) * u64::from(self.shape.head_dim);
        let dims = format!(
            "[{n_tokens} tokens][{} kv heads][{}]",
            self.shape.n_kv_heads, self.shape.head_dim
        );
        check_buf(gpu, op, "k", k, floats, &dims)?;
        check_buf(gpu, op, "v", v, floats, &dims)?;
        Ok((end, kc, vc))
    }

    /// Records that positions `[0, end)` of `layer` hold keys and values (a kernel stored them).
    pub fn mark_stored(&self, layer: u32, end: u32) {
        if let Some(f) = self.filled.get(layer as usize) {
            f.fetch_max(end, Ordering::Relaxed);
        }
    }

    /// Errors unless positions `[0, end)` of `layer` were stored.
    fn check_stored(&self, op: &str, layer: u32, end: u32) -> Result<(), GpuError> {
        self.layer(layer)?;
        let len = self.stored(layer);
        if end > len {
            return Err(shape_err(
                op,
                format!(
                    "attends to positions 0..{end} but layer {layer} holds {len} (store_kv first)"
                ),
            ));
        }
        Ok(())
    }

    /// The decode partials buffer, at least `bytes` long.
    fn partials(&self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        let mut slot = self.partials.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let b = gpu.storage("attention partials", bytes);
                *slot = Some(b.clone());
                b
            }
        }
    }
}

/// Heads and masking of an attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnConfig {
    /// Query heads: a multiple of the cache's `n_kv_heads`.
    pub n_heads: u32,
    /// Sliding window in positions, 0 for none.
    pub window: u32,
    /// Score scale, usually `1 / sqrt(head_dim)`.
    pub scale: f32,
    /// Scaled scores become `softcap · tanh(s / softcap)` before the mask (Gemma 2); 0: none.
    pub softcap: f32,
}

/// The uniform block of the attention kernels (`Params` in `shaders/attention_common.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct AttnParams {
    n_tokens: u32,
    pos0: u32,
    n_heads: u32,
    n_kv_heads: u32,
    group: u32,
    ctx: u32,
    window: u32,
    scale: f32,
    chunk: u32,
    n_splits: u32,
    grid_x: u32,
    heads_per_wg: u32,
    key_lanes: u32,
    kv_lo: u32,
    softcap: f32,
    _pad: u32,
}

/// Whether the row reductions use subgroup shuffles: T2, and a row's lanes fit one subgroup.
fn subgroups(gpu: &Gpu, tiles: &Tiles) -> bool {
    gpu.caps.tier >= Tier::T2 && tiles.lanes > 1 && tiles.lanes <= gpu.caps.subgroup_min_size
}

/// Query rows per lane group of attention_prefill_rows.wgsl (its `R`), and its keys per step.
const PREFILL_ROWS_PER_GROUP: u32 = 4;
const PREFILL_ROWS_KEYS: u32 = 8;

/// Whether prefill runs attention_prefill_rows.wgsl: on the `row` prefill family (CPU-like
/// adapters, where every load is issued per lane and workgroup memory costs as much as a
/// storage buffer) with subgroups that hold a lane group. It loads K and V once for 4 query
/// rows, straight from the cache, with no workgroup memory or barrier.
fn prefill_rows(gpu: &Gpu, tiles: &Tiles) -> bool {
    gpu.caps.prefill_family == KernelFamily::Row && subgroups(gpu, tiles)
}

/// The attention kernels.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Store,
    Prefill,
    /// attention_prefill_rows.wgsl: the `row` prefill family's shape (see [`prefill_rows`]).
    PrefillRows,
    Decode,
    Reduce,
}

/// The compiled kernel of `kind` for `cache`: source `body + common (+ kv loaders)`, flags
/// from the cache's element type and the tier, head_dim and tile sizes as override constants.
///
/// `x8` (decode and reduce only): the kernel also quantizes its output for `fast` precision
/// (`X8`, two more bindings: the quants and the scales).
async fn kernel(gpu: &Gpu, cache: &KvCache, kind: Kind, x8: bool) -> Result<Kernel, GpuError> {
    use Bind::{Read as R, ReadWrite as W, Uniform as U};
    let (name, body, bindings): (_, _, &[Bind]) = match (kind, x8) {
        (Kind::Store, _) => ("attention_store", STORE, &[U, R, R, W, W]),
        (Kind::Prefill, _) => ("attention_prefill", PREFILL, &[U, R, R, R, W]),
        (Kind::PrefillRows, _) => ("attention_prefill_rows", PREFILL_ROWS, &[U, R, R, R, W]),
        (Kind::Decode, false) => ("attention_decode", DECODE, &[U, R, R, R, W]),
        (Kind::Decode, true) => ("attention_decode_x8", DECODE, &[U, R, R, R, W, W, W]),
        (Kind::Reduce, false) => ("attention_reduce", REDUCE, &[U, R, W]),
        (Kind::Reduce, true) => ("attention_reduce_x8", REDUCE, &[U, R, W, W, W]),
    };
    let x8 = x8 && matches!(kind, Kind::Decode | Kind::Reduce);
    let (t, f16) = (cache.tiles, cache.shape.dtype == KvType::F16);
    let mut flags = Vec::new();
    if f16 {
        flags.push("KV_F16");
    }
    if subgroups(gpu, &t) {
        flags.push("SUBGROUPS");
    }
    if x8 {
        flags.push("X8");
    }
    let with_kv = matches!(kind, Kind::Prefill | Kind::PrefillRows | Kind::Decode);
    // Keys per step (BC).
    let bc = match kind {
        Kind::Decode => t.decode_keys,
        Kind::PrefillRows => PREFILL_ROWS_KEYS,
        _ => t.prefill_keys,
    };
    let source = |_: Tier| {
        let kv = match kind {
            Kind::Prefill | Kind::PrefillRows | Kind::Decode => KV,
            Kind::Store => KV_PACK,
            Kind::Reduce => "",
        };
        let cap = super::act::SOFTCAP_WGSL;
        let piece = if x8 { super::matvec::X8_PIECE } else { "" };
        let src = preprocess(&format!("{body}\n{COMMON}\n{cap}\n{kv}\n{piece}"), &flags);
        if kind != Kind::PrefillRows {
            return src;
        }
        // Literal loop bounds, so that the loops over a lane's vec4s, rows and keys are
        // unrolled in the source (`gpu::unroll`) and its arrays become registers: lavapipe
        // does not unroll loops bounded by override constants (2.4× for this kernel there).
        // The other attention kernels gained nothing on lavapipe from it, and SwiftShader took
        // 1.7× longer to compile them.
        let nv = cache.shape.head_dim / 4 / t.lanes;
        let src = format!("const R: u32 = {PREFILL_ROWS_PER_GROUP}u;\n{src}");
        unroll(
            &src.replace("i < NV;", &format!("i < {nv}u;"))
                .replace("j < R;", &format!("j < {PREFILL_ROWS_PER_GROUP}u;"))
                .replace("c < BC;", &format!("c < {bc}u;")),
        )
    };
    let mut constants = vec![("D", f64::from(cache.shape.head_dim))];
    if with_kv {
        constants.extend([("T", f64::from(t.lanes)), ("BC", f64::from(bc))]);
    }
    // The tier is part of the pipeline cache key already; head_dim and the element type are not.
    let variant = cache.shape.head_dim | (u32::from(f16) << 16);
    gpu.kernel(&KernelSpec {
        name,
        variant,
        source: &source,
        bindings,
        constants: &constants,
    })
    .await
}

/// Errors unless `buf` holds at least `floats` f32 values and fits one binding.
fn check_buf(
    gpu: &Gpu,
    op: &str,
    name: &str,
    buf: &wgpu::Buffer,
    floats: u64,
    dims: &str,
) -> Result<(), GpuError> {
    let bytes = floats * 4;
    if buf.size() < bytes {
        return Err(shape_err(
            &format!("{op} {name}"),
            format!(
                "needs {dims} = {floats} f32 values but the buffer holds {}",
                buf.size() / 4
            ),
        ));
    }
    super::check_binding(gpu, &format!("{op} {name}"), bytes)
}

/// Errors unless the heads of `cfg` fit the cache.
fn check_heads(op: &str, cache: &KvCache, cfg: &AttnConfig) -> Result<u32, GpuError> {
    if cfg.n_heads == 0 || !cfg.n_heads.is_multiple_of(cache.shape.n_kv_heads) {
        return Err(shape_err(
            op,
            format!(
                "{} query heads are not a multiple of the cache's {} kv heads",
                cfg.n_heads, cache.shape.n_kv_heads
            ),
        ));
    }
    Ok(cfg.n_heads / cache.shape.n_kv_heads)
}

/// Records writing K and V of `n_tokens` new tokens (each `[n_tokens][n_kv_heads][head_dim]`
/// f32) into positions `[pos0, pos0 + n_tokens)` of `layer`, converting to f16 for an f16 cache.
/// Storing past `ctx` is an error ("context full").
#[allow(clippy::too_many_arguments)]
pub async fn store_kv(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    cache: &KvCache,
    layer: u32,
    k: &wgpu::Buffer,
    v: &wgpu::Buffer,
    pos0: u32,
    n_tokens: u32,
) -> Result<(), GpuError> {
    let (end, kc, vc) = cache.store_target(gpu, "store_kv", layer, k, v, pos0, n_tokens)?;
    if n_tokens == 0 {
        return Ok(());
    }
    let floats =
        u64::from(n_tokens) * u64::from(cache.shape.n_kv_heads) * u64::from(cache.shape.head_dim);
    let kern = kernel(gpu, cache, Kind::Store, false).await?;
    let (gx, gy) = grid(gpu, (floats / 4).div_ceil(u64::from(WORKGROUP)) as u32);
    let params = AttnParams {
        n_tokens,
        pos0,
        n_kv_heads: cache.shape.n_kv_heads,
        ctx: cache.shape.ctx,
        grid_x: gx,
        ..AttnParams::default()
    };
    dispatch(enc, &kern, &params, &[k, v, kc, vc], (gx, gy, 1));
    cache.mark_stored(layer, end);
    Ok(())
}

/// Records attention of `n_tokens` queries at positions `[pos0, pos0 + n_tokens)` (`q`:
/// `[n_tokens][n_heads][head_dim]` f32) over cache positions `[0, pos0 + n_tokens)` of `layer`,
/// writing `out` (same layout as `q`). Their K and V must have been stored ([`store_kv`]).
///
/// Workgroup (query tile, kv head): [`Tiles::rows`] (token, head) rows sharing each K/V tile of
/// [`Tiles::prefill_keys`] keys, from the first key the tile's earliest query sees to the
/// latest query's position.
#[allow(clippy::too_many_arguments)]
pub async fn prefill(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    cache: &KvCache,
    layer: u32,
    q: &wgpu::Buffer,
    out: &wgpu::Buffer,
    pos0: u32,
    n_tokens: u32,
    cfg: &AttnConfig,
) -> Result<(), GpuError> {
    let op = "attention prefill";
    let group = check_heads(op, cache, cfg)?;
    let end = cache.check_room(op, pos0, n_tokens)?;
    cache.check_stored(op, layer, end)?;
    let floats = u64::from(n_tokens) * u64::from(cfg.n_heads) * u64::from(cache.shape.head_dim);
    let dims = format!(
        "[{n_tokens} tokens][{} heads][{}]",
        cfg.n_heads, cache.shape.head_dim
    );
    check_buf(gpu, op, "q", q, floats, &dims)?;
    check_buf(gpu, op, "out", out, floats, &dims)?;
    if n_tokens == 0 {
        return Ok(());
    }
    let (kc, vc) = cache.layer(layer)?;
    let (kern, tile_rows) = if prefill_rows(gpu, &cache.tiles) {
        let kern = kernel(gpu, cache, Kind::PrefillRows, false).await?;
        (kern, WORKGROUP / cache.tiles.lanes * PREFILL_ROWS_PER_GROUP)
    } else {
        (
            kernel(gpu, cache, Kind::Prefill, false).await?,
            cache.tiles.rows,
        )
    };
    let rows = u64::from(n_tokens) * u64::from(group);
    let (gx, gy) = grid(gpu, rows.div_ceil(u64::from(tile_rows)) as u32);
    let params = AttnParams {
        n_tokens,
        pos0,
        n_heads: cfg.n_heads,
        n_kv_heads: cache.shape.n_kv_heads,
        group,
        ctx: cache.shape.ctx,
        window: cfg.window,
        scale: cfg.scale,
        softcap: cfg.softcap,
        grid_x: gx,
        ..AttnParams::default()
    };
    dispatch(
        enc,
        &kern,
        &params,
        &[q, kc, vc, out],
        (gx, gy, cache.shape.n_kv_heads),
    );
    Ok(())
}

/// How [`decode`] splits `n_keys` keys: `(keys per split, splits)`. Splits are whole steps of
/// the kernel and at least [`MIN_KEYS_PER_SPLIT`] keys, at most [`MAX_SPLITS`] per head.
fn decode_split(n_keys: u32, per_step: u32) -> (u32, u32) {
    let want = n_keys.div_ceil(MIN_KEYS_PER_SPLIT).clamp(1, MAX_SPLITS);
    let chunk = n_keys.div_ceil(want).next_multiple_of(per_step);
    (chunk, n_keys.div_ceil(chunk))
}

/// Records attention of the one query token at position `pos` (`q`: `[n_heads][head_dim]`
/// f32) over cache positions `[0, pos]` of `layer`, writing `out` (same layout).
///
/// Split-K: workgroup (split, head group, kv head) covers a slice of the visible keys and
/// writes a partial maximum, sum and unnormalized output per head; a second pass combines them
/// (skipped when one split covers every key: the workgroups then write `out` themselves).
/// A workgroup serves every query head of its kv head (up to [`Tiles::rows`]), so GQA heads
/// share the K/V reads.
///
/// At `fast` precision (`x8`) the output is also quantized to 8 bits per 32 values into `x8`,
/// bit for bit as [`matvec::encode_quantize_x8`](super::matvec::encode_quantize_x8) would, by
/// the pass that writes it: the output projection's input needs no dispatch of its own.
/// Returns whether it quantized (not where a head's values are not whole 32-value pieces or
/// `x8` is too small: the caller then quantizes `out` itself).
#[allow(clippy::too_many_arguments)]
pub async fn decode(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    cache: &KvCache,
    layer: u32,
    q: &wgpu::Buffer,
    out: &wgpu::Buffer,
    pos: u32,
    cfg: &AttnConfig,
    x8: Option<&X8>,
) -> Result<bool, GpuError> {
    let op = "attention decode";
    let group = check_heads(op, cache, cfg)?;
    let end = cache.check_room(op, pos, 1)?;
    cache.check_stored(op, layer, end)?;
    let floats = u64::from(cfg.n_heads) * u64::from(cache.shape.head_dim);
    let dims = format!("[{} heads][{}]", cfg.n_heads, cache.shape.head_dim);
    check_buf(gpu, op, "q", q, floats, &dims)?;
    check_buf(gpu, op, "out", out, floats, &dims)?;
    let (kc, vc) = cache.layer(layer)?;
    let t = cache.tiles;

    let kv_lo = if cfg.window > 0 {
        end.saturating_sub(cfg.window)
    } else {
        0
    };
    let heads_per_wg = group.min(t.rows);
    let key_lanes = t.rows / heads_per_wg;
    let (chunk, n_splits) = decode_split(end - kv_lo, key_lanes * t.decode_keys);
    let part_bytes =
        u64::from(cfg.n_heads) * u64::from(n_splits) * (floats / u64::from(cfg.n_heads) + 4) * 4;
    super::check_binding(gpu, "attention decode partials", part_bytes)?;
    // Sized for the most splits at once, so that a growing context never replaces it (and
    // with it the step's cached bind groups).
    let most =
        u64::from(cfg.n_heads) * u64::from(MAX_SPLITS) * (floats / u64::from(cfg.n_heads) + 4) * 4;
    let part = cache.partials(gpu, part_bytes.max(most.min(gpu.caps.max_binding)));
    let params = AttnParams {
        n_tokens: 1,
        pos0: pos,
        n_heads: cfg.n_heads,
        n_kv_heads: cache.shape.n_kv_heads,
        group,
        ctx: cache.shape.ctx,
        window: cfg.window,
        scale: cfg.scale,
        softcap: cfg.softcap,
        chunk,
        n_splits,
        heads_per_wg,
        key_lanes,
        kv_lo,
        ..AttnParams::default()
    };
    let x8 =
        x8.filter(|x| cache.shape.head_dim.is_multiple_of(32) && u64::from(x.capacity) >= floats);
    let kern = kernel(gpu, cache, Kind::Decode, x8.is_some()).await?;
    let groups = (
        n_splits,
        group.div_ceil(heads_per_wg),
        cache.shape.n_kv_heads,
    );
    // Compiled even when unused, so that a context growing past one split compiles nothing.
    let reduce = kernel(gpu, cache, Kind::Reduce, x8.is_some()).await?;
    if n_splits == 1 {
        // One split writes the output itself (and quantizes it).
        match x8 {
            Some(x) => dispatch(enc, &kern, &params, &[q, kc, vc, out, &x.q, &x.s], groups),
            None => dispatch(enc, &kern, &params, &[q, kc, vc, out], groups),
        }
        return Ok(x8.is_some());
    }
    // The X8 kernel's quantization does not run with several splits, but it binds the x8
    // buffers: the same ones as the reduce, so nothing else is bound.
    match x8 {
        Some(x) => dispatch(enc, &kern, &params, &[q, kc, vc, &part, &x.q, &x.s], groups),
        None => dispatch(enc, &kern, &params, &[q, kc, vc, &part], groups),
    }
    let kern = reduce;
    let outs = (floats / 4).div_ceil(u64::from(WORKGROUP)) as u32;
    match x8 {
        Some(x) => dispatch(enc, &kern, &params, &[&part, out, &x.q, &x.s], (outs, 1, 1)),
        None => dispatch(enc, &kern, &params, &[&part, out], (outs, 1, 1)),
    }
    Ok(x8.is_some())
}

/// Stores the new tokens' K and V at `[pos0, pos0 + n_tokens)`, then runs [`decode`] for one
/// token or [`prefill`] for several. `q`, `out`: `[n_tokens][n_heads][head_dim]`; `k`, `v`:
/// `[n_tokens][n_kv_heads][head_dim]`, all f32.
#[allow(clippy::too_many_arguments)]
pub async fn attend(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    cache: &KvCache,
    layer: u32,
    q: &wgpu::Buffer,
    k: &wgpu::Buffer,
    v: &wgpu::Buffer,
    out: &wgpu::Buffer,
    pos0: u32,
    n_tokens: u32,
    cfg: &AttnConfig,
) -> Result<(), GpuError> {
    store_kv(gpu, enc, cache, layer, k, v, pos0, n_tokens).await?;
    attend_stored(gpu, enc, cache, layer, q, out, pos0, n_tokens, cfg, None).await?;
    Ok(())
}

/// [`decode`] for one token or [`prefill`] for several, over keys and values already stored
/// (by [`store_kv`], or by [`encode_qk_rope`](super::qk_rope::encode_qk_rope) with a store).
/// With `x8`, one token's output is also quantized where [`decode`] can; returns whether it was.
#[allow(clippy::too_many_arguments)]
pub async fn attend_stored(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    cache: &KvCache,
    layer: u32,
    q: &wgpu::Buffer,
    out: &wgpu::Buffer,
    pos0: u32,
    n_tokens: u32,
    cfg: &AttnConfig,
    x8: Option<&X8>,
) -> Result<bool, GpuError> {
    if n_tokens == 1 {
        decode(gpu, enc, cache, layer, q, out, pos0, cfg, x8).await
    } else {
        prefill(gpu, enc, cache, layer, q, out, pos0, n_tokens, cfg).await?;
        Ok(false)
    }
}

/// An attention problem for [`attention_ref`]: queries at positions `pos0 + token`.
#[derive(Clone, Copy, Debug)]
pub struct RefShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Positions per kv head in the K/V arrays (the cache's `ctx`).
    pub ctx: usize,
    pub pos0: usize,
    pub window: usize,
    pub scale: f32,
}

/// [`attention_ref`]'s result for the requested tokens, `[token][head][head_dim]`.
pub struct AttnRef {
    /// The exact attention output (f64 arithmetic on the f32 inputs).
    pub out: Vec<f64>,
    /// A bound on |GPU − `out`| for an f32 evaluation with online softmax (see [`attention_ref`]).
    pub bound: Vec<f64>,
}

/// γ(n) = n·u / (1 − n·u), u = 2⁻²⁴: the relative error bound of n f32 roundings (Higham §3.1).
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * f64::powi(2.0, -24);
    nu / (1.0 - nu)
}

/// f64 attention over `q` (`[token][head][head_dim]`) and the cache contents `k`, `v`
/// (`[kv_head][ctx][head_dim]`, e.g. [`KvCache::read_layer`], so f16 rounding is already in
/// them) for the query `tokens` given, with the same masking as the kernels.
///
/// The bound, per output element d of a row with visible keys j (n of them), scores
/// sⱼ = scale·q·kⱼ, m = maxⱼ sⱼ, R = m − minⱼ sⱼ, pⱼ = exp(sⱼ − m), L = Σpⱼ, o = Σpⱼvⱼ/L:
/// an f32 evaluation perturbs each pⱼ by a relative ρⱼ, which moves o by Σpⱼρⱼ(vⱼ − o)/L
/// (first order), and rounds the two sums. With u = 2⁻²⁴, WGSL's exp accuracy of
/// (3 + 2|x|) ulp (ulp ≤ 2u relative) and up to S = n + 2 rescale/merge steps (one per key
/// at worst, plus the decode merge and reduce; the arguments of the rescale exps telescope to
/// at most R):
///
/// ρⱼ = γ(D+2)·Σ|scale·qᵢkⱼᵢ| + u(m − sⱼ) + 2u(3 + 2(m − sⱼ)) + S(6u + 2u) + 4uR,
///
/// bound = Σⱼ pⱼρⱼ|vⱼ − o|/L + γ(n + S + 1)·(Σⱼ pⱼ|vⱼ| + |o|·L)/L + 6u|o| + n·2⁻¹²⁰·max|v|/L,
///
/// the last two terms for the final division (2.5 ulp in WGSL) and for exps that underflow.
pub fn attention_ref(
    shape: &RefShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    tokens: &[usize],
) -> AttnRef {
    let (h, d) = (shape.n_heads, shape.head_dim);
    let group = h / shape.n_kv_heads.max(1);
    let u = f64::powi(2.0, -24);
    let scale = f64::from(shape.scale);
    let mut out = Vec::with_capacity(tokens.len() * h * d);
    let mut bound = Vec::with_capacity(tokens.len() * h * d);
    for &tok in tokens {
        let pq = shape.pos0 + tok;
        let lo = if shape.window > 0 {
            (pq + 1).saturating_sub(shape.window)
        } else {
            0
        };
        let n = pq + 1 - lo;
        for head in 0..h {
            let qr = &q[(tok * h + head) * d..][..d];
            let kvh = head / group.max(1);
            let row = |p: usize| {
                let s = (kvh * shape.ctx + p) * d;
                s..s + d
            };
            let mut s = Vec::with_capacity(n);
            let mut abs = Vec::with_capacity(n);
            for p in lo..=pq {
                let kr = &k[row(p)];
                let (mut dot, mut a) = (0.0f64, 0.0f64);
                for (&x, &y) in qr.iter().zip(kr) {
                    let t = scale * f64::from(x) * f64::from(y);
                    dot += t;
                    a += t.abs();
                }
                s.push(dot);
                abs.push(a);
            }
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let r = m - s.iter().copied().fold(f64::INFINITY, f64::min);
            let p: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
            let l: f64 = p.iter().sum();
            let mut o = vec![0.0f64; d];
            let mut vmax = 0.0f64;
            for (j, pos) in (lo..=pq).enumerate() {
                for (oi, &x) in o.iter_mut().zip(&v[row(pos)]) {
                    *oi += p[j] * f64::from(x);
                    vmax = vmax.max(f64::from(x).abs());
                }
            }
            o.iter_mut().for_each(|x| *x /= l);
            let steps = (n + 2) as f64;
            let common = steps * 8.0 * u + 4.0 * u * r;
            let mut pert = vec![0.0f64; d];
            let mut pv = vec![0.0f64; d];
            for (j, pos) in (lo..=pq).enumerate() {
                let gap = m - s[j];
                let rho = gamma(d + 2) * abs[j] + u * gap + 2.0 * u * (3.0 + 2.0 * gap) + common;
                for ((i, &x), (pe, pa)) in v[row(pos)]
                    .iter()
                    .enumerate()
                    .zip(pert.iter_mut().zip(pv.iter_mut()))
                {
                    let x = f64::from(x);
                    *pe += p[j] * rho * (x - o[i]).abs();
                    *pa += p[j] * x.abs();
                }
            }
            let acc = gamma(n + n + 3);
            let tiny = n as f64 * f64::powi(2.0, -120) * vmax / l;
            for i in 0..d {
                bound.push(
                    pert[i] / l + acc * (pv[i] + o[i].abs() * l) / l + 6.0 * u * o[i].abs() + tiny,
                );
            }
            out.extend_from_slice(&o);
        }
    }
    AttnRef { out, bound }
}
