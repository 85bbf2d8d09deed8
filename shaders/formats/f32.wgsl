// F32: virtual blocks of 32 elements (128 bytes).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 128u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let w = b >> 2u;
    for (var i = 0u; i < 8u; i++) {
        let o = w + 4u * i;
        v[i] = bitcast<vec4<f32>>(vec4<u32>(W[o], W[o + 1u], W[o + 2u], W[o + 3u]));
    }
    return v;
}
