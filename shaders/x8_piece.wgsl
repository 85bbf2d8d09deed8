// Appended to the kernels that quantize x for `fast` precision (quantize_x8.wgsl,
// residual_norm.wgsl with X8): piece p of 32 values to XQ (32 signed bytes, four per u32, low byte
// first) and XS (d, d·Σq[0..16), d·Σq[16..32), d·Σq), with d = max|x| / 127 and q = round(x / d).
// The including kernel declares XQ: array<u32> and XS: array<vec4<f32>>.

fn pack_i8(q: vec4<i32>) -> u32 {
    let u = bitcast<vec4<u32>>(q) & vec4<u32>(0xffu);
    return u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}

fn quantize_piece(v: array<vec4<f32>, 8>, p: u32) {
    var amax = vec4<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        amax = max(amax, abs(v[i]));
    }
    let d = max(max(amax.x, amax.y), max(amax.z, amax.w)) / 127.0;
    let id = select(0.0, 1.0 / d, d > 0.0);
    var lo = 0;
    var hi = 0;
    for (var i = 0u; i < 8u; i++) {
        // |x·id| <= 127 up to rounding; the clamp keeps a rounding overshoot in range.
        let q = clamp(vec4<i32>(round(v[i] * id)), vec4<i32>(-127), vec4<i32>(127));
        XQ[p * 8u + i] = pack_i8(q);
        let t = (q.x + q.y) + (q.z + q.w);
        if (i < 4u) {
            lo += t;
        } else {
            hi += t;
        }
    }
    XS[p] = vec4<f32>(d, d * f32(lo), d * f32(hi), d * f32(lo + hi));
}
