// block_q5_0 (22 bytes): d: f16 | qh: u32 (5th bits) | qs: 16 bytes (low nibbles: x[0..16], high: x[16..32]).
// x[j] = d * ((low4 | bit_j(qh) << 4) - 16).
const BLOCK_ELEMS: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;

fn dq32(b: u32, s: u32) -> V32 {
    var v: V32;
    let d = half_at(b);
    let qh = ld32(b + 2u);
    for (var i = 0u; i < 4u; i++) {
        let q = bytes4(ld32(b + 6u + 4u * i));
        let e = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
        let hl = ((vec4<u32>(qh) >> e) & vec4<u32>(1u)) << vec4<u32>(4u);
        let hh = ((vec4<u32>(qh) >> (e + vec4<u32>(16u))) & vec4<u32>(1u)) << vec4<u32>(4u);
        v[i] = d * (vec4<f32>((q & vec4<u32>(15u)) | hl) - 16.0);
        v[i + 4u] = d * (vec4<f32>((q >> vec4<u32>(4u)) | hh) - 16.0);
    }
    return v;
}
