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
// implements sin/cos (WGSL only promises 2^-11 absolute, and only inside [−π, π]).

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

const HALF_PI: f32 = 1.5707963267948966;

// (sin a, cos a) for |a| <= π/4: Taylor polynomials to a^9 and a^10 (truncation < 2e-9).
fn sin_cos_small(a: f32) -> vec2<f32> {
    let z = a * a;
    let s = a + a * z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (1.0 / 362880.0))));
    let c = 1.0 + z * (-0.5 + z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (-1.0 / 3628800.0)))));
    return vec2<f32>(s, c);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (g >= P.pairs) {
        return;
    }
    let i = g % P.half;
    let row = g / P.half;               // token · heads + head
    let pos = f32(P.pos0 + row / P.heads);
    let hi = P.hi[i / 4u][i % 4u];
    let lo = P.lo[i / 4u][i % 4u];
    // Angle in turns: fract(pos·hi) is exact, pos·lo is small.
    let v = 4.0 * (fract(pos * hi) + pos * lo);   // quarter turns
    let q = round(v);
    let sc = sin_cos_small((v - q) * HALF_PI);   // v − q is exact, in [−1/2, 1/2]
    var sn: f32;
    var cs: f32;
    switch (i32(q) & 3) {
        case 0: {
            sn = sc.x;
            cs = sc.y;
        }
        case 1: {
            sn = sc.y;
            cs = -sc.x;
        }
        case 2: {
            sn = -sc.x;
            cs = -sc.y;
        }
        default: {
            sn = -sc.y;
            cs = sc.x;
        }
    }
    sn *= P.mscale;
    cs *= P.mscale;
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
