// F16: virtual blocks of 32 elements (64 bytes), always 16-byte aligned: vec4 loads.
// unpack2x16float on every tier: exact, and on lavapipe 1.7x faster than loading through the
// f16 view (2.47 vs 1.43 GB/s measured).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 64u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let w = b >> 4u;
    for (var i = 0u; i < 4u; i++) {
        let q = w4(w + i);
        v[2u * i] = vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
        v[2u * i + 1u] = vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
    }
    return v;
}
