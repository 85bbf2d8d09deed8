// BF16: virtual blocks of 32 elements (64 bytes); a bf16 is the high half of an f32.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 64u;

fn bf16x2(w: u32) -> vec2<f32> {
    return bitcast<vec2<f32>>(vec2<u32>(w << 16u, w & 0xffff0000u));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let w = b >> 2u;
    for (var i = 0u; i < 8u; i++) {
        v[i] = vec4<f32>(bf16x2(W[w + 2u * i]), bf16x2(W[w + 2u * i + 1u]));
    }
    return v;
}
