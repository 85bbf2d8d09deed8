// BF16: virtual blocks of 32 elements (64 bytes), always 16-byte aligned; a bf16 is the high half of an f32.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 64u;

fn bf16x2(w: u32) -> vec2<f32> {
    return bitcast<vec2<f32>>(vec2<u32>(w << 16u, w & 0xffff0000u));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let w = b >> 4u;
    for (var i = 0u; i < 4u; i++) {
        let q = w4(w + i);
        v[2u * i] = vec4<f32>(bf16x2(q.x), bf16x2(q.y));
        v[2u * i + 1u] = vec4<f32>(bf16x2(q.z), bf16x2(q.w));
    }
    return v;
}
