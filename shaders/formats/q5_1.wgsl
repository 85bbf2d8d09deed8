// block_q5_1 (24 bytes in GGUF): d: f16 | m: f16 | qh: u32 | qs: 16 bytes. x[j] = d * (low4 | bit_j(qh) << 4) + m.
//
// On the GPU, Q5_1 is stored repacked (gpu::buffer's Repack): every 8 consecutive blocks form a
// 192-byte group, their 8 (d, m) pairs (32 bytes), their 8 transposed qh (32 bytes, as Q5_0's),
// then their 8 × 16 quant bytes. Kernels still address a block at its GGUF byte offset b.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;

struct Q51Block {
    dm: vec2<f32>,
    q: array<u32, 8>,
}

fn q5_1_block(b: u32) -> Q51Block {
    let p = packed(b);
    let qh = w1((p.g >> 2u) + 8u + p.j);
    let qs = w4((p.g >> 4u) + 4u + p.j);
    return Q51Block(halves_at(p.g + 4u * p.j), q5_words(qs, qh));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let k = q5_1_block(b);
    for (var i = 0u; i < 8u; i++) {
        v[i] = k.dm.x * vec4<f32>(bytes4(k.q[i])) + k.dm.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let k = q5_1_block(b);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(k.q[i], xq[i]);
    }
    return k.dm.x * (xs.x * f32(t)) + k.dm.y * xs.w;
}
#endif
