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
