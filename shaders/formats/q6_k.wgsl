// block_q6_K (210 bytes in GGUF): ql: 128 bytes | qh: 64 bytes | scales: 16 signed bytes | d: f16.
// x = (d * scale) * (q - 32) with a six-bit q and one scale per 16 values.
//
// On the GPU, Q6_K is stored repacked (gpu::buffer's Repack and shuffle_q6_k): every 8
// consecutive blocks form a 1680-byte group: their 8 d (16 bytes), their 8 × 16 scales (128),
// their low four bits (8 × 128: 16 bytes per 32-value piece, byte i holding value i in its low
// nibble and value 16 + i in its high one), then their high two bits (8 × 64: two words per
// piece; bits 2k..2k+1 of byte b of word m belong to value 4·(4m + k) + b). A piece is then one
// aligned vec4, two words, one scale word and d, where GGUF's 2-byte-aligned blocks cost nine
// 16-byte windows. Kernels still address a block at its GGUF byte offset b.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;

struct Q6 {
    // d · scale for the piece's two halves (values 0..15 and 16..31).
    dl: vec2<f32>,
    // The six-bit quants (before the −32), four per u32: word i holds values 4i..4i+3.
    q: array<u32, 8>,
}

fn q6_k_piece(b: u32, s: u32) -> Q6 {
    let p = packed(b);
    let d = half_at(p.g + 2u * p.j);
    let sw = w1((p.g + 16u + 16u * p.j + 2u * s) >> 2u);
    let sh = (s & 1u) * 16u;
    let lo = w4((p.g + 144u + 128u * p.j + 16u * s) >> 4u);
    let hw = (p.g + 1168u + 64u * p.j + 8u * s) >> 2u;
    let h0 = w1(hw);
    let h1 = w1(hw + 1u);
    var r: Q6;
    r.dl = d * vec2<f32>(f32(bitcast<i32>(sw << (24u - sh)) >> 24u), f32(bitcast<i32>(sw << (16u - sh)) >> 24u));
    for (var i = 0u; i < 4u; i++) {
        r.q[i] = (lo[i] & 0x0f0f0f0fu) | (((h0 >> (2u * i)) & 0x03030303u) << 4u);
        r.q[i + 4u] = ((lo[i] >> 4u) & 0x0f0f0f0fu) | (((h1 >> (2u * i)) & 0x03030303u) << 4u);
    }
    return r;
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let p = q6_k_piece(b, s);
    for (var i = 0u; i < 4u; i++) {
        v[i] = p.dl.x * vec4<f32>(vec4<i32>(bytes4(p.q[i])) - vec4<i32>(32));
        v[i + 4u] = p.dl.y * vec4<f32>(vec4<i32>(bytes4(p.q[i + 4u])) - vec4<i32>(32));
    }
    return v;
}

#if X8
// Two scales per piece (one per 16 values): Σ (q - 32)·xq per half, with that half's sum of xq.
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let p = q6_k_piece(b, s);
    var lo = 0;
    var hi = 0;
    for (var i = 0u; i < 4u; i++) {
        lo += idot4(p.q[i], xq[i]);
        hi += idot4(p.q[i + 4u], xq[i + 4u]);
    }
    return p.dl.x * (xs.x * f32(lo) - 32.0 * xs.y) + p.dl.y * (xs.x * f32(hi) - 32.0 * xs.z);
}
#endif
