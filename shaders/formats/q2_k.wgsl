// block_q2_K (84 bytes): scales: 16 bytes (low nibble scale, high nibble min) | qs: 64 bytes | d: f16 | dmin: f16.
// Sub-block s of 32 elements: bytes qs[(s / 4) * 32 + j] >> (2 * (s % 4)), two 16-element scale groups.
// x = (d * sc) * q - (dmin * m). Blocks are 84 bytes, so every field is u32-aligned.
const BLOCK_ELEMS: u32 = 256u;
const BLOCK_BYTES: u32 = 84u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let dd = halves_at(b + 80u);
    let q0 = (b + 16u + (s >> 2u) * 32u) >> 2u;
    let shift = (s & 3u) * 2u;
    let scs = w1((b >> 2u) + (s >> 1u)) >> ((s & 1u) * 16u);
    for (var h = 0u; h < 2u; h++) {
        let sc = (scs >> (8u * h)) & 0xffu;
        let dl = dd.x * f32(sc & 15u);
        let ml = dd.y * f32(sc >> 4u);
        for (var i = 0u; i < 4u; i++) {
            let q = (w1(q0 + 4u * h + i) >> shift) & 0x03030303u;
            v[4u * h + i] = dl * vec4<f32>(bytes4(q)) - ml;
        }
    }
    return v;
}
