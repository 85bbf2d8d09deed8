// block_q3_K (110 bytes): hmask: 32 bytes | qs: 64 bytes | scales: 12 bytes (16 signed 6-bit) | d: f16.
// Sub-block s: low bits (qs[(s / 4) * 32 + j] >> (2 * (s % 4))) & 3, high bit (hmask[j] >> s) & 1;
// q = low - 4 when the high bit is clear. x = (d * (scale - 32)) * q.
// Blocks are only 2-byte aligned: aligned words are loaded once and funnel-shifted, and quants
// are assembled four at a time in packed u32s.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;

// Byte i of the little-endian words in w.
fn q3k_byte(w: ptr<function, array<u32, 4>>, i: u32) -> u32 {
    return ((*w)[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let sh = (b & 3u) << 3u; // every field offset is a multiple of 4 from b
    let d = half_at(b + 108u);
    let hw = b >> 2u;
    let qw = (b + 32u + (s >> 2u) * 32u) >> 2u;
    let cw = (b + 96u) >> 2u;
    var hm: array<u32, 9>;
    var qs: array<u32, 9>;
    for (var i = 0u; i < 9u; i++) {
        hm[i] = w1(hw + i);
        qs[i] = w1(qw + i);
    }
    var sc: array<u32, 4>;
    for (var i = 0u; i < 3u; i++) {
        sc[i] = funnel(w1(cw + i), w1(cw + i + 1u), sh);
    }
    let lshift = (s & 3u) * 2u;
    for (var h = 0u; h < 2u; h++) {
        let idx = 2u * s + h;
        let lo = (q3k_byte(&sc, idx & 7u) >> ((idx >> 3u) * 4u)) & 15u;
        let hi = (q3k_byte(&sc, 8u + (idx & 3u)) >> ((idx >> 2u) * 2u)) & 3u;
        let dl = d * f32(i32(lo | (hi << 4u)) - 32);
        for (var i = 0u; i < 4u; i++) {
            let j = 4u * h + i;
            let low = (funnel(qs[j], qs[j + 1u], sh) >> lshift) & 0x03030303u;
            let high = (funnel(hm[j], hm[j + 1u], sh) >> s) & 0x01010101u;
            v[j] = dl * (vec4<f32>(bytes4(low | (high << 2u))) - 4.0);
        }
    }
    return v;
}
