//! Q and K prepared for attention in one dispatch (`shaders/qk_rope.wgsl`): per head, the
//! optional QK-norm (`rms_norm(head) · w`, Qwen 3 and Gemma 3) and then RoPE, for every head of
//! q (`[tokens][n_heads][head_dim]`) and of k (`[tokens][n_kv_heads][head_dim]`), in place.
//! It computes per element what [`norm::encode_rms_norm`](super::norm::encode_rms_norm) and
//! [`rope::encode_rope`](super::rope::encode_rope) compute in turn (two to four dispatches), so
//! their references and bounds apply; `tests/ops_small.rs` compares it with them.

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
    hi: [f32; 256],
    lo: [f32; 256],
}

fn source(norm: bool, tier: Tier) -> String {
    let mut flags = Vec::new();
    if norm {
        flags.push("NORM");
    }
    if tier >= Tier::T2 {
        flags.push("SUBGROUPS");
    }
    preprocess(&format!("{SRC}\n{ROW_SUM}\n{}", rope::ANGLE), &flags)
}

/// The QK-norm weights of one layer: `q_norm`, `k_norm` (each `[head_dim]`) and epsilon.
pub struct QkNorm<'a> {
    pub q: &'a wgpu::Buffer,
    pub k: &'a wgpu::Buffer,
    pub eps: f32,
}

/// Records QK-norm (when `norm` is given) and RoPE on `q` (`n_heads` per token) and `k`
/// (`n_kv_heads` per token) for `tokens` tokens at positions `pos0..`, in place, in one dispatch.
#[allow(clippy::too_many_arguments)]
pub async fn encode_qk_rope(
    gpu: &Gpu,
    enc: &mut Encoder<'_>,
    q: &wgpu::Buffer,
    k: &wgpu::Buffer,
    norm: Option<&QkNorm<'_>>,
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
    if q == k {
        return Err(shape("q and k are the same buffer".into()));
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
    let rows_q = tokens * n_heads;
    let rows_k = tokens * n_kv_heads;
    let with_norm = norm.is_some();
    let mut bindings = vec![Bind::Uniform, Bind::ReadWrite, Bind::ReadWrite];
    if with_norm {
        bindings.extend([Bind::Read, Bind::Read]);
    }
    let kernel = gpu
        .kernel(&KernelSpec {
            name: "qk_rope",
            variant: u32::from(with_norm),
            source: &|tier| source(with_norm, tier),
            bindings: &bindings,
            constants: &[],
        })
        .await?;
    let (gx, gy) = grid(gpu, rows_q + rows_k);
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
        hi: [0.0; 256],
        lo: [0.0; 256],
    };
    rope::turns_table(rope, &mut p.hi, &mut p.lo);
    let mut bufs = vec![q, k];
    if let Some(n) = norm {
        bufs.extend([n.q, n.k]);
    }
    dispatch(enc, &kernel, &p, &bufs, (gx, gy, 1));
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn every_variant_validates() {
        for tier in [Tier::T0, Tier::T1, Tier::T2] {
            for norm in [false, true] {
                crate::ops::act::validate_wgsl(
                    &format!("qk_rope norm={norm}"),
                    tier,
                    &source(norm, tier),
                );
            }
        }
    }
}
