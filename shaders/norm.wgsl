// RMS norm, one workgroup of 64 invocations per row:
//   y[r][i] = x[r][i] / sqrt(mean_i(x[r][i]^2) + eps) * w[i]
// Rows are tokens (n = n_embd) or heads (QK-norm: rows = tokens × heads, n = head_dim).
// Flags: WEIGHT (multiply by w), INPLACE (y is x), SUBGROUPS (T2: the row sum with subgroupAdd;
// row_sum.wgsl is appended).
// Bindings: 0 params, 1 x, then w (WEIGHT), then y (unless INPLACE).

struct NormParams {
    rows: u32,
    n: u32,
    grid_x: u32,
    eps: f32,
    inv_n: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: NormParams;
#if INPLACE
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
#else
@group(0) @binding(1) var<storage, read> X: array<f32>;
#endif
#if WEIGHT
@group(0) @binding(2) var<storage, read> W: array<f32>;
#if !INPLACE
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#endif
#else
#if !INPLACE
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
#endif
#endif

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
    let row = wg.y * P.grid_x + wg.x;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if (row >= P.rows) {
        return;
    }
    let base = row * P.n;
    var s = 0.0;
    for (var i = li; i < P.n; i += WG) {
        let v = X[base + i];
        s += v * v;
    }
    let total = row_sum(s, li, sl, ss);
    let r = inverseSqrt(total * P.inv_n + P.eps);
    // In place is safe: every element is read (above and here) before the same invocation
    // overwrites it, and all reads of the reduction happened before the barrier.
    for (var i = li; i < P.n; i += WG) {
        var v = X[base + i] * r;
#if WEIGHT
        v *= W[i];
#endif
#if INPLACE
        X[base + i] = v;
#else
        Y[base + i] = v;
#endif
    }
}
