// block_q8_0 (34 bytes): d: f16 | qs: 32 signed bytes. x[j] = qs[j] * d.
// Blocks are 2-byte aligned: the 9 aligned words covering qs are loaded once and funnel-shifted.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b);
    let q = b + 2u;
    let w0 = q >> 2u;
    let sh = (q & 3u) << 3u;
    var w: array<u32, 9>;
    for (var i = 0u; i < 9u; i++) {
        w[i] = W[w0 + i];
    }
    for (var i = 0u; i < 8u; i++) {
        let word = select((w[i] >> sh) | (w[i + 1u] << (32u - sh)), w[i], sh == 0u);
        v[i] = vec4<f32>(sbytes4(word)) * d;
    }
    return v;
}
