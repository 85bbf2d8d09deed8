// Rotary position embedding, in place on x: [tokens][heads][head_dim] f32, token t at position
// pos0 + t. One invocation per rotated pair (t, h, i), i < n_rot / 2:
//   NORMAL (Llama):            pair (2i, 2i + 1)
//   NEOX (Qwen 2/3, Gemma 3):  pair (i, i + n_rot / 2)
//   (a, b) <- m·(a·cos θ − b·sin θ, a·sin θ + b·cos θ),  θ = pos · t_i · 2π.
// t_i (turns per position) folds in base^(−2i / n_rot), frequency factors, linear scaling and
// YaRN's per-pair mix (src/ops/rope.rs); m is attn_factor with YaRN's magnitude correction.
// Dimensions n_rot .. head_dim are left as they are.
//
// The angle is computed in turns (θ / 2π) without losing the position's bits: the host splits
// t_i = freq_scale · base^(−2i/n_rot) / 2π into hi (7 significant bits) + lo, so pos·hi is exact
// in f32 for pos < 2^17 and only its fraction matters. sin and cos come from polynomials on
// [−π/4, π/4] after an exact quadrant reduction, so the accuracy does not depend on how a driver
// implements sin/cos (WGSL only promises 2^-11 absolute, and only inside [−π, π]); the angle
// code is rope_angle.wgsl, appended (shared with qk_rope.wgsl).

struct RopeParams {
    pairs: u32,     // tokens · heads · n_rot / 2
    heads: u32,
    head_dim: u32,
    half: u32,      // n_rot / 2
    pos0: u32,
    neox: u32,
    grid_x: u32,
    mscale: f32,    // multiplier of cos and sin: attn_factor (YaRN: times its magnitude correction)
    hi: array<vec4<f32>, 64>,
    lo: array<vec4<f32>, 64>,
}

@group(0) @binding(0) var<uniform> P: RopeParams;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (g >= P.pairs) {
        return;
    }
    let i = g % P.half;
    let row = g / P.half;               // token · heads + head
    let pos = f32(P.pos0 + row / P.heads);
    let sc = rope_sin_cos(pos, P.hi[i / 4u][i % 4u], P.lo[i / 4u][i % 4u], P.mscale);
    let sn = sc.x;
    let cs = sc.y;
    let base = row * P.head_dim;
    var j0 = base + 2u * i;
    var j1 = j0 + 1u;
    if (P.neox != 0u) {
        j0 = base + i;
        j1 = j0 + P.half;
    }
    let a = X[j0];
    let b = X[j1];
    X[j0] = a * cs - b * sn;
    X[j1] = a * sn + b * cs;
}
