// F32: virtual blocks of 32 elements (128 bytes), always 16-byte aligned: vec4 loads.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 128u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let w = b >> 4u;
    for (var i = 0u; i < 8u; i++) {
        v[i] = bitcast<vec4<f32>>(w4(w + i));
    }
    return v;
}
