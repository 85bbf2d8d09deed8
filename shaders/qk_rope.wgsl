// Q and K of one step prepared for attention in one dispatch: per head (one workgroup of 64
// invocations per row), optionally RMS-normed with its weight (QK-norm: Qwen 3, Gemma 3), then
// rotated (RoPE, as rope.wgsl; the angle code is rope_angle.wgsl). Rows 0 .. rows_q are q's
// `[tokens][n_heads]` heads, the next rows_k are k's `[tokens][n_kv_heads]`; token t is at
// position pos0 + t. Per element it computes what rms_norm and rope compute one after the other.
// With STORE it is also the KV-cache store: a k row, once rotated, is copied to the cache at
// position pos0 + t, and rows_v more rows copy v's `[tokens][n_kv_heads]` heads, as
// attention_store.wgsl would (kv_pack.wgsl is appended).
// Flags: NORM, SUBGROUPS (row_sum.wgsl is appended), STORE, KV_F16. Bindings: 0 params, 1 q,
// 2 k (both read-write, in place), 3 q_norm and 4 k_norm weights (NORM; with STORE and no NORM
// the layout keeps them, bound to v), 5 v, 6 K cache, 7 V cache (STORE).

struct QkRopeParams {
    rows_q: u32,
    rows_k: u32,
    heads_q: u32,
    heads_k: u32,
    head_dim: u32,
    half: u32,      // n_rot / 2
    pos0: u32,
    neox: u32,
    grid_x: u32,
    eps: f32,
    inv_d: f32,     // 1 / head_dim
    mscale: f32,
    rows_v: u32,    // STORE: v rows to copy (0 otherwise)
    ctx: u32,       // STORE: positions per kv head in the cache
    _pad0: u32,
    _pad1: u32,
    hi: array<vec4<f32>, 64>,
    lo: array<vec4<f32>, 64>,
}

@group(0) @binding(0) var<uniform> P: QkRopeParams;
@group(0) @binding(1) var<storage, read_write> Q: array<f32>;
@group(0) @binding(2) var<storage, read_write> K: array<f32>;
#if NORM
@group(0) @binding(3) var<storage, read> QW: array<f32>;
@group(0) @binding(4) var<storage, read> KW: array<f32>;
#endif
#if STORE
@group(0) @binding(5) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> KC: array<KvWord>;
@group(0) @binding(7) var<storage, read_write> VC: array<KvWord>;

// The first cache word of kv row `row` (`[token][kv_head]`) at its position.
fn cache_row(row: u32) -> u32 {
    let tok = row / P.heads_k;
    let kvh = row % P.heads_k;
    return (kvh * P.ctx + P.pos0 + tok) * (P.head_dim / 4u);
}
#endif

fn load(is_q: bool, j: u32) -> f32 {
    if (is_q) {
        return Q[j];
    }
    return K[j];
}

fn store(is_q: bool, j: u32, v: f32) {
    if (is_q) {
        Q[j] = v;
    } else {
        K[j] = v;
    }
}

// The element after the norm: x · r · w (as rms_norm computes it), or x.
fn normed(is_q: bool, j: u32, d: u32, r: f32) -> f32 {
    var v = load(is_q, j);
#if NORM
    v = v * r;
    if (is_q) {
        v *= QW[d];
    } else {
        v *= KW[d];
    }
#endif
    return v;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
#if SUBGROUPS
    @builtin(subgroup_invocation_id) sl: u32,
    @builtin(subgroup_size) ss: u32,
#endif
) {
#if !SUBGROUPS
    let sl = 0u;
    let ss = 1u;
#endif
    let g = wg.y * P.grid_x + wg.x;
    // Uniform across the workgroup, so the barriers in row_sum stay in uniform control flow.
    if (g >= P.rows_q + P.rows_k + P.rows_v) {
        return;
    }
#if STORE
    if (g >= P.rows_q + P.rows_k) {
        // A v row: copied into the cache.
        let row = g - P.rows_q - P.rows_k;
        let dst = cache_row(row);
        let d4 = P.head_dim / 4u;
        for (var j = li; j < d4; j += WG) {
            VC[dst + j] = pack(V[row * d4 + j]);
        }
        return;
    }
#endif
    let is_q = g < P.rows_q;
    var row = g;
    var heads = P.heads_q;
    if (!is_q) {
        row = g - P.rows_q;
        heads = P.heads_k;
    }
    let base = row * P.head_dim;
    let pos = f32(P.pos0 + row / heads);
    var r = 1.0;
#if NORM
    var s = 0.0;
    for (var d = li; d < P.head_dim; d += WG) {
        let v = load(is_q, base + d);
        s += v * v;
    }
    r = inverseSqrt(row_sum(s, li, sl, ss) * P.inv_d + P.eps);
#endif
    // Each invocation reads and writes only its own pairs and its own unrotated dimensions.
    for (var i = li; i < P.half; i += WG) {
        var d0 = 2u * i;
        var d1 = d0 + 1u;
        if (P.neox != 0u) {
            d0 = i;
            d1 = i + P.half;
        }
        let a = normed(is_q, base + d0, d0, r);
        let b = normed(is_q, base + d1, d1, r);
        let sc = rope_sin_cos(pos, P.hi[i / 4u][i % 4u], P.lo[i / 4u][i % 4u], P.mscale);
        store(is_q, base + d0, a * sc.y - b * sc.x);
        store(is_q, base + d1, a * sc.x + b * sc.y);
    }
#if NORM
    for (var d = 2u * P.half + li; d < P.head_dim; d += WG) {
        store(is_q, base + d, normed(is_q, base + d, d, r));
    }
#endif
#if STORE
    // A k row goes to the cache once every invocation has written its part of it.
    storageBarrier();
    if (!is_q) {
        let dst = cache_row(row);
        for (var j = li; j < P.head_dim / 4u; j += WG) {
            let e = base + 4u * j;
            KC[dst + j] = pack(vec4<f32>(K[e], K[e + 1u], K[e + 2u], K[e + 3u]));
        }
    }
#endif
}
