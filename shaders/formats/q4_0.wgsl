// block_q4_0 (18 bytes): d: f16 | qs: 16 bytes. x[j] = d * ((qs[j] & 15) - 8), x[j+16] = d * ((qs[j] >> 4) - 8).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(ld32(b + 2u + 4u * i));
        v[i] = d * (vec4<f32>(q & vec4<u32>(15u)) - 8.0);
        v[i + 4u] = d * (vec4<f32>(q >> vec4<u32>(4u)) - 8.0);
    }
    return v;
}

#if X8
// Σ (q - 8)·xq = Σ q·xq - 8·Σ xq; the second sum comes with x (xs.w = d_x·Σ xq).
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        let q = ld32(b + 2u + 4u * i);
        t += idot4(q & 0x0f0f0f0fu, xq[i]) + idot4((q >> 4u) & 0x0f0f0f0fu, xq[i + 4u]);
    }
    return half_at(b) * (xs.x * f32(t) - 8.0 * xs.w);
}
#endif
