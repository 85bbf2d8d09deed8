// block_q8_0 (34 bytes in GGUF): d: f16 | qs: 32 signed bytes. x[j] = qs[j] * d.
//
// On the GPU, Q8_0 is stored repacked (gpu::buffer's WeightWriter does it while uploading): every
// 8 consecutive blocks of a weight buffer form a 272-byte group, their 8 d first (16 bytes), then
// their 8 × 32 quants. Same size as GGUF's layout, but each block's quants are 16-byte aligned:
// two vec4 loads instead of three loads, selects and funnel shifts (GGUF's 34-byte blocks are
// only 2-byte aligned). Kernels still address a block at its GGUF byte offset b = 34·block.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

// The quants of the block at GGUF byte offset b as eight words, and the byte address of its d.
struct Q8Block {
    q: array<u32, 8>,
    d_at: u32,
}

fn q8_block(b: u32) -> Q8Block {
    let blk = b / 34u;
    let g = blk >> 3u;
    let j = blk & 7u;
    let qi = g * 17u + 1u + 2u * j;
    let a = w4(qi);
    let c = w4(qi + 1u);
    return Q8Block(array<u32, 8>(a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w), g * 272u + 2u * j);
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let k = q8_block(b);
    let d = half_at(k.d_at);
    for (var i = 0u; i < 8u; i++) {
        v[i] = vec4<f32>(sbytes4(k.q[i])) * d;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let k = q8_block(b);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(k.q[i], xq[i]);
    }
    return half_at(k.d_at) * (xs.x * f32(t));
}
#endif
