// block_q4_1 (20 bytes): d: f16 | m: f16 | qs: 16 bytes. x[j] = d * (qs[j] & 15) + m, x[j+16] = d * (qs[j] >> 4) + m.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let dm = halves_at(b);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(ld32(b + 4u + 4u * i));
        v[i] = dm.x * vec4<f32>(q & vec4<u32>(15u)) + dm.y;
        v[i + 4u] = dm.x * vec4<f32>(q >> vec4<u32>(4u)) + dm.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let dm = halves_at(b);
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        let q = ld32(b + 4u + 4u * i);
        t += idot4(q & 0x0f0f0f0fu, xq[i]) + idot4((q >> 4u) & 0x0f0f0f0fu, xq[i + 4u]);
    }
    return dm.x * (xs.x * f32(t)) + dm.y * xs.w;
}
#endif
