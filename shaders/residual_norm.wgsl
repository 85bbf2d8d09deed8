// The residual step between two sublayers, one workgroup of 64 invocations per row (token):
//   x[r] += POST ? rms_norm(h[r]) · post_w : h[r]        (Gemma's post-norm, then the residual add)
//   y[r]  = rms_norm(x[r]) · w                           (the next sublayer's pre-norm)
// It computes what rms_norm (POST), add and rms_norm compute one after the other, in the same
// order per element, in one dispatch instead of three. y is written over h (each invocation
// reads and writes only its own elements of a row). With X8 (`fast` decode) it also quantizes y
// for the next matvecs, as quantize_x8.wgsl would (x8_piece.wgsl is appended): once the row is
// written, each invocation takes whole 32-value pieces. Flags: POST, SUBGROUPS (row_sum.wgsl is
// appended), X8. Bindings: 0 params, 1 x (read-write), 2 h (read-write: in h, y out), 3 w, 4
// post_w (POST; with X8 and no POST the layout keeps it, bound to w), 5 XQ, 6 XS (X8).

struct ResidualParams {
    rows: u32,
    n: u32,
    grid_x: u32,
    eps: f32,
    inv_n: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: ResidualParams;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> H: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f32>;
#if POST
@group(0) @binding(4) var<storage, read> PW: array<f32>;
#endif
#if X8
@group(0) @binding(5) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(6) var<storage, read_write> XS: array<vec4<f32>>;
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
    // Uniform across the workgroup, so the barriers in row_sum stay in uniform control flow.
    if (row >= P.rows) {
        return;
    }
    let base = row * P.n;
#if POST
    var sh = 0.0;
    for (var i = li; i < P.n; i += WG) {
        let v = H[base + i];
        sh += v * v;
    }
    let rh = inverseSqrt(row_sum(sh, li, sl, ss) * P.inv_n + P.eps);
#endif
    var s = 0.0;
    for (var i = li; i < P.n; i += WG) {
        var v = H[base + i];
#if POST
        v = v * rh;
        v *= PW[i];
#endif
        let xn = X[base + i] + v;
        X[base + i] = xn;
        s += xn * xn;
    }
    let r = inverseSqrt(row_sum(s, li, sl, ss) * P.inv_n + P.eps);
    for (var i = li; i < P.n; i += WG) {
        var v = X[base + i] * r;
        v *= W[i];
        H[base + i] = v;
    }
#if X8
    // The row is complete once every invocation passed the barrier.
    storageBarrier();
    let pieces = P.n / 32u;
    for (var p = li; p < pieces; p += WG) {
        var v: array<vec4<f32>, 8>;
        for (var i = 0u; i < 8u; i++) {
            let e = base + p * 32u + i * 4u;
            v[i] = vec4<f32>(H[e], H[e + 1u], H[e + 2u], H[e + 3u]);
        }
        quantize_piece(v, row * pieces + p);
    }
#endif
}
