// block_q4_1 (20 bytes in GGUF): d: f16 | m: f16 | qs: 16 bytes. x[j] = d * (qs[j] & 15) + m, x[j+16] = d * (qs[j] >> 4) + m.
//
// On the GPU, Q4_1 is stored repacked (gpu::buffer's Repack): every 8 consecutive blocks form a
// 160-byte group, their 8 (d, m) pairs (32 bytes), then their 8 × 16 quant bytes, so each
// block's quants are one aligned vec4 load. Kernels still address a block at its GGUF offset b.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;

struct Q41Block {
    dm: vec2<f32>,
    q: vec4<u32>,
}

fn q4_1_block(b: u32) -> Q41Block {
    let p = packed(b);
    return Q41Block(halves_at(p.g + 4u * p.j), w4((p.g >> 4u) + 2u + p.j));
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let k = q4_1_block(b);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(k.q[i]);
        v[i] = k.dm.x * vec4<f32>(q & vec4<u32>(15u)) + k.dm.y;
        v[i + 4u] = k.dm.x * vec4<f32>(q >> vec4<u32>(4u)) + k.dm.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let k = q4_1_block(b);
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        t += idot4(k.q[i] & 0x0f0f0f0fu, xq[i]) + idot4((k.q[i] >> 4u) & 0x0f0f0f0fu, xq[i + 4u]);
    }
    return k.dm.x * (xs.x * f32(t)) + k.dm.y * xs.w;
}
#endif
