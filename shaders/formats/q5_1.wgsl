// block_q5_1 (24 bytes): d: f16 | m: f16 | qh: u32 | qs: 16 bytes. x[j] = d * (low4 | bit_j(qh) << 4) + m.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let dm = halves_at(b);
    let qh = ld32(b + 4u);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(ld32(b + 8u + 4u * i));
        let e = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
        let hl = ((vec4<u32>(qh) >> e) & vec4<u32>(1u)) << vec4<u32>(4u);
        let hh = ((vec4<u32>(qh) >> (e + vec4<u32>(16u))) & vec4<u32>(1u)) << vec4<u32>(4u);
        v[i] = dm.x * vec4<f32>((q & vec4<u32>(15u)) | hl) + dm.y;
        v[i + 4u] = dm.x * vec4<f32>((q >> vec4<u32>(4u)) | hh) + dm.y;
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let dm = halves_at(b);
    let qh = ld32(b + 4u);
    var t = 0;
    for (var i = 0u; i < 4u; i++) {
        let q = ld32(b + 8u + 4u * i);
        let lo = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
        let hi = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
        t += idot4(lo, xq[i]) + idot4(hi, xq[i + 4u]);
    }
    return dm.x * (xs.x * f32(t)) + dm.y * xs.w;
}
#endif
