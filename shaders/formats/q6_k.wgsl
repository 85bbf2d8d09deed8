// block_q6_K (210 bytes): ql: 128 bytes | qh: 64 bytes | scales: 16 signed bytes | d: f16.
// Sub-block s (half = s / 4, t = s % 4): low nibble (t / 2) of ql[half * 64 + (t % 2) * 32 + j],
// high bits (qh[half * 32 + j] >> 2t) & 3. x = (d * scale) * (q - 32), one scale per 16 elements.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b + 208u);
    let half = s >> 2u;
    let t = s & 3u;
    let l0 = b + half * 64u + (t & 1u) * 32u;
    let h0 = b + 128u + half * 32u;
    let lshift = vec4<u32>((t >> 1u) * 4u);
    let hshift = vec4<u32>(t * 2u);
    for (var h = 0u; h < 2u; h++) {
        let sc = ld8(b + 192u + 2u * s + h);
        let dl = d * f32((i32(sc) << 24u) >> 24u);
        for (var i = 0u; i < 4u; i++) {
            let o = 16u * h + 4u * i;
            let lo = (bytes4(ld32(l0 + o)) >> lshift) & vec4<u32>(15u);
            let hi = ((bytes4(ld32(h0 + o)) >> hshift) & vec4<u32>(3u)) << vec4<u32>(4u);
            v[4u * h + i] = dl * vec4<f32>(vec4<i32>(lo | hi) - vec4<i32>(32));
        }
    }
    return v;
}
