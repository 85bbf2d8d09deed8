// F16: virtual blocks of 32 elements (64 bytes).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 64u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    for (var i = 0u; i < 8u; i++) {
        v[i] = vec4<f32>(halves_at(b + 8u * i), halves_at(b + 8u * i + 4u));
    }
    return v;
}
