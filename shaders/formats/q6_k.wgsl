// block_q6_K (210 bytes): ql: 128 bytes | qh: 64 bytes | scales: 16 signed bytes | d: f16.
// Sub-block s (half = s / 4, t = s % 4): low nibble (t / 2) of ql[half * 64 + (t % 2) * 32 + j],
// high bits (qh[half * 32 + j] >> 2t) & 3. x = (d * scale) * (q - 32), one scale per 16 elements.
// Blocks are only 2-byte aligned: each 32-byte run comes from three 16-byte loads (`run32`), and
// the quants are assembled four at a time in packed u32s.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b + 208u);
    let half = s >> 2u;
    let t = s & 3u;
    let l0 = b + half * 64u + (t & 1u) * 32u;
    let h0 = b + 128u + half * 32u;
    let lshift = (t >> 1u) * 4u;
    let hshift = t * 2u;
    let lq = run32(l0);
    let hq = run32(h0);
    let sc = funnel(W[(b + 192u + 2u * s) >> 2u], W[((b + 192u + 2u * s) >> 2u) + 1u], ((b + 192u + 2u * s) & 3u) << 3u);
    for (var h = 0u; h < 2u; h++) {
        let dl = d * f32((i32(sc << (24u - 8u * h))) >> 24u);
        for (var i = 0u; i < 4u; i++) {
            let j = 4u * h + i;
            let lo = (lq[j] >> lshift) & 0x0f0f0f0fu;
            let hi = (hq[j] >> hshift) & 0x03030303u;
            v[j] = dl * vec4<f32>(vec4<i32>(bytes4(lo | (hi << 4u))) - vec4<i32>(32));
        }
    }
    return v;
}

#if X8
// Two scales per piece (one per 16 values): Σ (q - 32)·xq per half, with that half's sum of xq.
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let d = half_at(b + 208u);
    let half = s >> 2u;
    let t = s & 3u;
    let lq = run32(b + half * 64u + (t & 1u) * 32u);
    let hq = run32(b + 128u + half * 32u);
    let lshift = (t >> 1u) * 4u;
    let hshift = t * 2u;
    let sa = b + 192u + 2u * s;
    let sc = funnel(W[sa >> 2u], W[(sa >> 2u) + 1u], (sa & 3u) << 3u);
    var r = 0.0;
    for (var h = 0u; h < 2u; h++) {
        var acc = 0;
        for (var i = 0u; i < 4u; i++) {
            let j = 4u * h + i;
            let q = ((lq[j] >> lshift) & 0x0f0f0f0fu) | (((hq[j] >> hshift) & 0x03030303u) << 4u);
            acc += idot4(q, xq[j]);
        }
        let dl = d * f32((i32(sc << (24u - 8u * h))) >> 24u);
        r += dl * (xs.x * f32(acc) - 32.0 * select(xs.y, xs.z, h == 1u));
    }
    return r;
}
#endif
