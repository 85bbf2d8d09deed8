//! Q and K prepared for attention in one dispatch (`shaders/qk_rope.wgsl`): per head, the
//! optional QK-norm (`rms_norm(head) · w`, Qwen 3 and Gemma 3) and then RoPE, for every head of
//! q (`[tokens][n_heads][head_dim]`) and of k (`[tokens][n_kv_heads][head_dim]`), in place.
//! It computes per element what [`norm::encode_rms_norm`](super::norm::encode_rms_norm) and
//! [`rope::encode_rope`](super::rope::encode_rope) compute in turn (two to four dispatches), so
//! their references and bounds apply; `tests/ops_small.rs` compares it with them.
//!
//! Given a [`KvStore`], the same dispatch also writes the rotated k and the new v into the KV
//! cache, as [`attention::store_kv`] would: the forward then needs no store dispatch.

use super::attention::{self, KvCache, KvType};
use super::rope::{self, Rope, RopeMode};
use super::{check_binding, dispatch, grid};
use crate::gpu::{preprocess, Bind, Encoder, Gpu, GpuError, KernelSpec, Tier};

const SRC: &str = include_str!("../../shaders/qk_rope.wgsl");
const ROW_SUM: &str = include_str!("../../shaders/row_sum.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct QkRopeParams {
    rows_q: u32,
    rows_k: u32,
    heads_q: u32,
    heads_k: u32,
    head_dim: u32,
    half: u32,
    pos0: u32,
    neox: u32,
    grid_x: u32,
    eps: f32,
    inv_d: f32,
    mscale: f32,
    rows_v: u32,
    ctx: u32,
    _pad: [u32; 2],
    hi: [f32; 256],
    lo: [f32; 256],
}

/// The kernel's variant: QK-norm, and whether (and in which element type) it stores K and V.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Variant {
    norm: bool,
    store: Option<KvType>,
}

impl Variant {
    fn id(self) -> u32 {
        let store = match self.store {
            None => 0,
            Some(KvType::F32) => 1,
            Some(KvType::F16) => 2,
        };
        u32::from(self.norm) | store << 1
    }
}

fn source(v: Variant, tier: Tier) -> String {
    let mut flags = Vec::new();
    if v.norm {
        flags.push("NORM");
    }
    if tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    if let Some(t) = v.store {
        flags.push("STORE");
        if t == KvType::F16 {
            flags.push("KV_F16");
        }
    }
    let pack = if v.store.is_some() {
        attention::KV_PACK
    } else {
        ""
    };
    preprocess(
        &format!("{SRC}\n{ROW_SUM}\n{}\n{pack}", rope::ANGLE),
        &flags,
    )
}

/// The QK-norm weights of one layer: `q_norm`, `k_norm` (each `[head_dim]`) and epsilon.
pub struct QkNorm<'a> {
    pub q: &'a wgpu::Buffer,
    pub k: &'a wgpu::Buffer,
    pub eps: f32,
}

/// Where [`encode_qk_rope`] also stores the new keys and values: layer `layer` of `cache`, with
/// `v` (`[tokens][n_kv_heads][head_dim]` f32) the values.
pub struct KvStore<'a> {
    pub cache: &'a KvCache,
    pub layer: u32,
    pub v: &'a wgpu::Buffer,
}

/// Records QK-norm (when `norm` is given) and RoPE on `q` (`n_heads` per token) and `k`
/// (`n_kv_heads` per token) for `tokens` tokens at positions `pos0..`, in place, in one dispatch;
/// with `store`, the same dispatch writes the rotated k and `store.v` into the cache at those
/// positions.
#[allow(clippy::too_many_arguments)]
pub async fn encode_qk_rope(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    q: &wgpu::Buffer,
    k: &wgpu::Buffer,
    norm: Option<&QkNorm<'_>>,
    store: Option<&KvStore<'_>>,
    tokens: u32,
    n_heads: u32,
    n_kv_heads: u32,
    pos0: u32,
    rope: &Rope,
) -> Result<(), GpuError> {
    rope::check(q.size(), tokens, n_heads, pos0, rope)?;
    rope::check(k.size(), tokens, n_kv_heads, pos0, rope)?;
    let shape = |detail: String| GpuError::Shape {
        tensor: "qk_rope".into(),
        detail,
    };
    if q == k || store.is_some_and(|s| s.v == q || s.v == k) {
        return Err(shape("q, k and v must be distinct buffers".into()));
    }
    if let Some(n) = norm {
        for (name, w) in [("q_norm", n.q), ("k_norm", n.k)] {
            if w.size() < u64::from(rope.head_dim) * 4 {
                return Err(shape(format!(
                    "{name} has {} values, heads have {}",
                    w.size() / 4,
                    rope.head_dim
                )));
            }
        }
        if !(n.eps.is_finite() && n.eps >= 0.0) {
            return Err(GpuError::BadSetting {
                name: "qk norm eps".into(),
                value: n.eps.to_string(),
                reason: "must be finite and not negative".into(),
            });
        }
    }
    check_binding(gpu, "qk_rope q", q.size())?;
    check_binding(gpu, "qk_rope k", k.size())?;
    // The cache's checks (room, layer, k and v sizes) are store_kv's.
    let target = match store {
        Some(s) => {
            let sh = s.cache.shape();
            if sh.n_kv_heads != n_kv_heads || sh.head_dim != rope.head_dim {
                return Err(shape(format!(
                    "the cache holds {} kv heads of {}, k has {n_kv_heads} of {}",
                    sh.n_kv_heads, sh.head_dim, rope.head_dim
                )));
            }
            let op = "qk_rope store";
            let (end, kc, vc) = s
                .cache
                .store_target(gpu, op, s.layer, k, s.v, pos0, tokens)?;
            Some((s, end, kc, vc, sh))
        }
        None => None,
    };
    let rows_q = tokens * n_heads;
    let rows_k = tokens * n_kv_heads;
    let variant = Variant {
        norm: norm.is_some(),
        store: target.as_ref().map(|t| t.4.dtype),
    };
    let mut bindings = vec![Bind::Uniform, Bind::ReadWrite, Bind::ReadWrite];
    if variant.norm || variant.store.is_some() {
        bindings.extend([Bind::Read, Bind::Read]);
    }
    if variant.store.is_some() {
        bindings.extend([Bind::Read, Bind::ReadWrite, Bind::ReadWrite]);
    }
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "qk_rope",
            variant: variant.id(),
            source: &|tier| source(variant, tier),
            bindings: &bindings,
            constants: &[],
        })
        .await?;
    let rows_v = if target.is_some() { rows_k } else { 0 };
    let (gx, gy) = grid(gpu, rows_q + rows_k + rows_v);
    let mut p = QkRopeParams {
        rows_q,
        rows_k,
        heads_q: n_heads,
        heads_k: n_kv_heads,
        head_dim: rope.head_dim,
        half: rope.n_rot / 2,
        pos0,
        neox: u32::from(rope.mode == RopeMode::Neox),
        grid_x: gx,
        eps: norm.map_or(0.0, |n| n.eps),
        inv_d: 1.0 / rope.head_dim as f32,
        mscale: rope.mscale() as f32,
        rows_v,
        ctx: target.as_ref().map_or(0, |t| t.4.ctx),
        _pad: [0; 2],
        hi: [0.0; 256],
        lo: [0.0; 256],
    };
    rope::turns_table(rope, &mut p.hi, &mut p.lo);
    let mut bufs = vec![q, k];
    match (norm, &target) {
        (Some(n), _) => bufs.extend([n.q, n.k]),
        // The layout keeps the norm weights' slots; v is a read-only buffer to fill them.
        (None, Some((s, ..))) => bufs.extend([s.v, s.v]),
        (None, None) => {}
    }
    if let Some((s, _, kc, vc, _)) = &target {
        bufs.extend([s.v, *kc, *vc]);
    }
    dispatch(enc, &kernel, &p, &bufs, (gx, gy, 1));
    if let Some((s, end, ..)) = target {
        s.cache.mark_stored(s.layer, end);
    }
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for norm in [false, true] {
                for store in [None, Some(KvType::F32), Some(KvType::F16)] {
                    let v = Variant { norm, store };
                    crate::ops::act::validate_wgsl(
                        &format!("qk_rope norm={norm} store={:?}", v.id() >> 1),
                        tier,
                        &source(v, tier),
                    );
                }
            }
        }
    }
}
