// block_q5_0 (22 bytes in GGUF): d: f16 | qh: u32 (5th bits) | qs: 16 bytes (low nibbles: x[0..16], high: x[16..32]).
// x[j] = d * ((low4 | bit_j(qh) << 4) - 16).
//
// On the GPU, Q5_0 is stored repacked (gpu::buffer's Repack): every 8 consecutive blocks form a
// 176-byte group, their 8 d (16 bytes), their 8 qh (32 bytes, each transposed so that a quant
// word's four high bits are one shift and one mask away), then their 8 × 16 quant bytes (one
// aligned vec4 load per block). Kernels still address a block at its GGUF byte offset b.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;

// The block's d and its 32 quants (0..31, before the −16), four per u32: q[i] holds elements
// 4i..4i+3 (low nibbles, i < 4) and q[i + 4] elements 16 + 4i.. (high nibbles).
fn q5_0_quants(b: u32) -> Q5 {
    let p = packed(b);
    let qh = w1((p.g >> 2u) + 4u + p.j);
    let qs = w4((p.g >> 4u) + 3u + p.j);
    var r: Q5;
    r.d = half_at(p.g + 2u * p.j);
    r.q = q5_words(qs, qh);
    return r;
}

struct Q5 {
    d: f32,
    q: array<u32, 8>,
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let p = q5_0_quants(b);
    for (var i = 0u; i < 8u; i++) {
        v[i] = p.d * (vec4<f32>(bytes4(p.q[i])) - 16.0);
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let p = q5_0_quants(b);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(p.q[i], xq[i]);
    }
    return p.d * (xs.x * f32(t) - 16.0 * xs.w);
}
#endif
