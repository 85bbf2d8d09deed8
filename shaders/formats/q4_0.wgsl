// block_q4_0 (18 bytes in GGUF): d: f16 | qs: 16 bytes. x[j] = d * ((qs[j] & 15) - 8), x[j+16] = d * ((qs[j] >> 4) - 8).
//
// On the GPU, Q4_0 is stored repacked (gpu::buffer's Repack): every 8 consecutive blocks form a
// 144-byte group, their 8 d (16 bytes), then their 8 × 16 quant bytes, so each block's quants
// are one aligned vec4 load. Kernels still address a block at its GGUF byte offset b.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

struct Q4Block {
    d: f32,
    q: vec4<u32>,
}

fn q4_0_block(b: u32) -> Q4Block {
    let p = packed(b);
    return Q4Block(half_at(p.g + 2u * p.j), w4((p.g >> 4u) + 1u + p.j));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let k = q4_0_block(b);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(k.q[i]);
        v[i] = k.d * (vec4<f32>(q & vec4<u32>(15u)) - 8.0);
        v[i + 4u] = k.d * (vec4<f32>(q >> vec4<u32>(4u)) - 8.0);
    }
    return v;
}

#if X8
// Σ (q - 8)·xq = Σ q·xq - 8·Σ xq; the second sum comes with x (xs.w = d_x·Σ xq).
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let k = q4_0_block(b);
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        t += idot4(k.q[i] & 0x0f0f0f0fu, xq[i]) + idot4((k.q[i] >> 4u) & 0x0f0f0f0fu, xq[i + 4u]);
    }
    return k.d * (xs.x * f32(t) - 8.0 * xs.w);
}
#endif
