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

// The block's d and its 32 quants (0..31, before the −16), four per u32: q[i] holds elements
// 4i..4i+3 (low nibbles, i < 4) and q[i + 4] elements 16 + 4i.. (high nibbles).
fn q5_0_quants(b: u32) -> Q5 {
    var w: array<u32, 7>;
    for (var i = 0u; i < 7u; i++) {
        w[i] = W[(b >> 2u) + i];
    }
    let o = b & 3u;
    var r: Q5;
    r.d = unpack2x16float(q5_word(&w, o) & 0xffffu).x;
    let qh = q5_word(&w, o + 2u);
    for (var i = 0u; i < 4u; i++) {
        let q = q5_word(&w, o + 6u + 4u * i);
        r.q[i] = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * i));
        r.q[i + 4u] = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * i));
    }
    return r;
}

struct Q5 {
    d: f32,
    q: array<u32, 8>,
}

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let p = q5_0_quants(b);
    for (var i = 0u; i < 8u; i++) {
        v[i] = p.d * (vec4<f32>(bytes4(p.q[i])) - 16.0);
    }
    return v;
}

#if X8
fn xdot32(b: u32, s: u32, xq: Q32, xs: vec4<f32>) -> f32 {
    let p = q5_0_quants(b);
    var t = 0;
    for (var i = 0u; i < 8u; i++) {
        t += idot4(p.q[i], xq[i]);
    }
    return p.d * (xs.x * f32(t) - 16.0 * xs.w);
}
#endif
