// `fast` precision: x quantized to 8 bits per 32 values, the way ggml's q8_1 prepares x for its
// integer dot products: d = max|x| / 127, q = round(x / d). One invocation per 32-value piece.
// XQ: the piece's 32 signed bytes, four per u32, low byte first.
// XS: per piece (d, d·Σq[0..16), d·Σq[16..32), d·Σq): the sums let a format with an offset or a
// minimum (q - 8, d·q + m, …) subtract it once per piece instead of once per weight.

struct QParams {
    pieces: u32,
    grid_x: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: QParams;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(3) var<storage, read_write> XS: array<vec4<f32>>;

fn pack_i8(q: vec4<i32>) -> u32 {
    let u = bitcast<vec4<u32>>(q) & vec4<u32>(0xffu);
    return u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (p >= P.pieces) {
        return;
    }
    var v: array<vec4<f32>, 8>;
    var amax = vec4<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        v[i] = X[p * 8u + i];
        amax = max(amax, abs(v[i]));
    }
    let d = max(max(amax.x, amax.y), max(amax.z, amax.w)) / 127.0;
    let id = select(0.0, 1.0 / d, d > 0.0);
    var lo = 0;
    var hi = 0;
    for (var i = 0u; i < 8u; i++) {
        // |x·id| <= 127 up to rounding; the clamp keeps a rounding overshoot in range.
        let q = clamp(vec4<i32>(round(v[i] * id)), vec4<i32>(-127), vec4<i32>(127));
        XQ[p * 8u + i] = pack_i8(q);
        let t = (q.x + q.y) + (q.z + q.w);
        if (i < 4u) {
            lo += t;
        } else {
            hi += t;
        }
    }
    XS[p] = vec4<f32>(d, d * f32(lo), d * f32(hi), d * f32(lo + hi));
}
