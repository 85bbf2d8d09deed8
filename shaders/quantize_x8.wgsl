// `fast` precision: x quantized to 8 bits per 32 values, the way ggml's q8_1 prepares x for its
// integer dot products: d = max|x| / 127, q = round(x / d). One invocation per 32-value piece
// (x8_piece.wgsl, appended, quantizes it; residual_norm.wgsl with X8 uses the same function).
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (p >= P.pieces) {
        return;
    }
    var v: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        v[i] = X[p * 8u + i];
    }
    quantize_piece(v, p);
}
