// block_q4_K (144 bytes): d: f16 | dmin: f16 | scales: 12 bytes (8 six-bit scales and mins) | qs: 128 bytes.
// Sub-block s: nibble (s % 2) of qs[(s / 2) * 32 + j]. x = (d * sc) * q - (dmin * m).
// Blocks are 144 bytes, so every block and its qs are 16-byte aligned: vec4 loads throughout.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let b4 = b >> 4u;
    let f = dl_ml_k4(b, s);
    let dl = f.x;
    let ml = f.y;
    let q0 = b4 + 1u + (s >> 1u) * 2u;
    let shift = vec4<u32>((s & 1u) * 4u);
    let qa = (W4[q0] >> shift) & vec4<u32>(0x0f0f0f0fu);
    let qb = (W4[q0 + 1u] >> shift) & vec4<u32>(0x0f0f0f0fu);
    for (var i = 0u; i < 4u; i++) {
        v[i] = dl * vec4<f32>(bytes4(qa[i])) - ml;
        v[i + 4u] = dl * vec4<f32>(bytes4(qb[i])) - ml;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let b4 = b >> 4u;
    let f = dl_ml_k4(b, s);
    let q0 = b4 + 1u + (s >> 1u) * 2u;
    let shift = vec4<u32>((s & 1u) * 4u);
    let qa = (W4[q0] >> shift) & vec4<u32>(0x0f0f0f0fu);
    let qb = (W4[q0 + 1u] >> shift) & vec4<u32>(0x0f0f0f0fu);
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        t += idot4(qa[i], xq[i]) + idot4(qb[i], xq[i + 4u]);
    }
    return f.x * (xs.x * f32(t)) - f.y * xs.w;
}
#endif
