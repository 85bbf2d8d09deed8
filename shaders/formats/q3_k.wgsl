// block_q3_K (110 bytes): hmask: 32 bytes | qs: 64 bytes | scales: 12 bytes (16 signed 6-bit) | d: f16.
// Sub-block s: low bits (qs[(s / 4) * 32 + j] >> (2 * (s % 4))) & 3, high bit (hmask[j] >> s) & 1;
// q = low - 4 when the high bit is clear. x = (d * (scale - 32)) * q.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;

fn q3k_scale(b: u32, idx: u32) -> f32 {
    let lo = (ld8(b + 96u + (idx & 7u)) >> ((idx >> 3u) * 4u)) & 15u;
    let hi = (ld8(b + 104u + (idx & 3u)) >> ((idx >> 2u) * 2u)) & 3u;
    return f32(i32(lo | (hi << 4u)) - 32);
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b + 108u);
    let q0 = b + 32u + (s >> 2u) * 32u;
    let shift = vec4<u32>((s & 3u) * 2u);
    for (var h = 0u; h < 2u; h++) {
        let dl = d * q3k_scale(b, 2u * s + h);
        for (var i = 0u; i < 4u; i++) {
            let lo = (bytes4(ld32(q0 + 16u * h + 4u * i)) >> shift) & vec4<u32>(3u);
            let hb = (bytes4(ld32(b + 16u * h + 4u * i)) >> vec4<u32>(s)) & vec4<u32>(1u);
            let q = vec4<i32>(lo) - vec4<i32>((hb ^ vec4<u32>(1u)) << vec4<u32>(2u));
            v[4u * h + i] = dl * vec4<f32>(q);
        }
    }
    return v;
}
