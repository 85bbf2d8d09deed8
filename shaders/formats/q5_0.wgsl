// block_q5_0 (22 bytes): d: f16 | qh: u32 (5th bits) | qs: 16 bytes (low nibbles: x[0..16], high: x[16..32]).
// x[j] = d * ((low4 | bit_j(qh) << 4) - 16).
// Blocks are only 2-byte aligned: the 7 aligned words covering the block are loaded once and
// fields are funnel-shifted out of them; quants are assembled four at a time in packed u32s.
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;

// The u32 at byte o of the words in w.
fn q5_word(w: ptr<function, array<u32, 7>>, o: u32) -> u32 {
    return funnel((*w)[o >> 2u], (*w)[(o >> 2u) + 1u], (o & 3u) << 3u);
}

// Bits 0..3 of x moved to bit 4 of bytes 0..3.
fn spread4(x: u32) -> u32 {
    return ((x & 1u) << 4u) | ((x & 2u) << 11u) | ((x & 4u) << 18u) | ((x & 8u) << 25u);
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    var w: array<u32, 7>;
    for (var i = 0u; i < 7u; i++) {
        w[i] = W[(b >> 2u) + i];
    }
    let o = b & 3u;
    let d = unpack2x16float(q5_word(&w, o) & 0xffffu).x;
    let qh = q5_word(&w, o + 2u);
    for (var i = 0u; i < 4u; i++) {
        let q = q5_word(&w, o + 6u + 4u * i);
        let lo = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
        let hi = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
        v[i] = d * (vec4<f32>(bytes4(lo)) - 16.0);
        v[i + 4u] = d * (vec4<f32>(bytes4(hi)) - 16.0);
    }
    return v;
}
