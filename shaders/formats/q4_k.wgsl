// block_q4_K (144 bytes): d: f16 | dmin: f16 | scales: 12 bytes (8 six-bit scales and mins) | qs: 128 bytes.
// Sub-block s: nibble (s % 2) of qs[(s / 2) * 32 + j]. x = (d * sc) * q - (dmin * m).
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;

// (scale, min) of sub-block s from the 12 packed bytes at c (shared with Q5_K).
fn scale_min_k4(c: u32, s: u32) -> vec2<f32> {
    if (s < 4u) {
        return vec2<f32>(f32(ld8(c + s) & 63u), f32(ld8(c + s + 4u) & 63u));
    }
    let sc = (ld8(c + s + 4u) & 15u) | ((ld8(c + s - 4u) >> 6u) << 4u);
    let m = (ld8(c + s + 4u) >> 4u) | ((ld8(c + s) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let dd = halves_at(b);
    let sm = scale_min_k4(b + 4u, s);
    let dl = dd.x * sm.x;
    let ml = dd.y * sm.y;
    let q0 = b + 16u + (s >> 1u) * 32u;
    let shift = vec4<u32>((s & 1u) * 4u);
    for (var i = 0u; i < 8u; i++) {
        let q = (bytes4(ld32(q0 + 4u * i)) >> shift) & vec4<u32>(15u);
        v[i] = dl * vec4<f32>(q) - ml;
    }
    return v;
}
