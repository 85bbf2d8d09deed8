// block_q5_K (176 bytes): d: f16 | dmin: f16 | scales: 12 bytes | qh: 32 bytes | qs: 128 bytes.
// x = (d * sc) * q - (dmin * m) with a five-bit q, one (sc, m) per 32-value piece s.
// On the GPU each piece is stored as Q5_0 stores a block (gpu::buffer's shuffle_q5_k): after
// the 16 header bytes, piece s's transposed high-bit word at 16 + 4·s, then its 16 quant bytes
// at 48 + 16·s (byte i: value i in the low nibble, 16 + i in the high one). Blocks are 176
// bytes, so every block is 16-byte aligned.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;

fn q5_k_words(b: u32, s: u32) -> array<u32, 8> {
    return q5_words(w4((b >> 4u) + 3u + s), w1((b >> 2u) + 4u + s));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let f = dl_ml_k4(b, s);
    let q = q5_k_words(b, s);
    for (var i = 0u; i < 8u; i++) {
        v[i] = f.x * vec4<f32>(bytes4(q[i])) - f.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let f = dl_ml_k4(b, s);
    let q = q5_k_words(b, s);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(q[i], xq[i]);
    }
    return f.x * (xs.x * f32(t)) - f.y * xs.w;
}
#endif
