// block_q8_0 (34 bytes): d: f16 | qs: 32 signed bytes. x[j] = qs[j] * d.
// Blocks are only 2-byte aligned: qs comes from three 16-byte loads (`run32`).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b);
    let q = run32(b + 2u);
    for (var i = 0u; i < 8u; i++) {
        v[i] = vec4<f32>(sbytes4(q[i])) * d;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let q = run32(b + 2u);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(q[i], xq[i]);
    }
    return half_at(b) * (xs.x * f32(t));
}
#endif
