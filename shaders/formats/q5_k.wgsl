// block_q5_K (176 bytes): d: f16 | dmin: f16 | scales: 12 bytes | qh: 32 bytes | qs: 128 bytes.
// Sub-block s: low nibble (s % 2) of qs[(s / 2) * 32 + j], 5th bit (qh[j] >> s) & 1. x = (d * sc) * q - (dmin * m).
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;

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
    let q0 = b + 48u + (s >> 1u) * 32u;
    let shift = vec4<u32>((s & 1u) * 4u);
    for (var i = 0u; i < 8u; i++) {
        let lo = (bytes4(ld32(q0 + 4u * i)) >> shift) & vec4<u32>(15u);
        let hi = ((bytes4(ld32(b + 16u + 4u * i)) >> vec4<u32>(s)) & vec4<u32>(1u)) << vec4<u32>(4u);
        v[i] = dl * vec4<f32>(lo | hi) - ml;
    }
    return v;
}
