// block_q4_K (144 bytes): d: f16 | dmin: f16 | scales: 12 bytes (8 six-bit scales and mins) | qs: 128 bytes.
// x = (d * sc) * q - (dmin * m), one (sc, m) per 32-value piece s.
// On the GPU the quants are stored shuffled (gpu::buffer's shuffle_q4_k): piece s is the 16
// bytes at 16 + 16·s, byte i holding value i in its low nibble and value 16 + i in its high one.
// Blocks are 144 bytes, so every block is 16-byte aligned: one vec4 load per piece's quants.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;

// Piece s's 32 quants (0..15), four per u32: word i holds values 4i..4i+3.
fn q4_k_words(b: u32, s: u32) -> array<u32, 8> {
    let qs = w4((b >> 4u) + 1u + s);
    var q: array<u32, 8>;
    for (var i = 0u; i < 4u; i++) {
        q[i] = qs[i] & 0x0f0f0f0fu;
        q[i + 4u] = (qs[i] >> 4u) & 0x0f0f0f0fu;
    }
    return q;
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let f = dl_ml_k4(b, s);
    let q = q4_k_words(b, s);
    for (var i = 0u; i < 8u; i++) {
        v[i] = f.x * vec4<f32>(bytes4(q[i])) - f.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let f = dl_ml_k4(b, s);
    let q = q4_k_words(b, s);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(q[i], xq[i]);
    }
    return f.x * (xs.x * f32(t)) - f.y * xs.w;
}
#endif
