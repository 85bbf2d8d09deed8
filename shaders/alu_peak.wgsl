// ALU roofline: every invocation runs P.k steps of 16 independent f32 FMAs (four vec4 chains),
// so the adapter's peak multiply-add rate can be set beside the memory roofline. The operands come
// from memory and the result is written, so nothing can be folded away.

@group(0) @binding(1) var<storage, read> W4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = W4[0];
    let k = W4[1];
    var a = W4[2] + f32(gid.x);
    var b = a + 1.0;
    var c = a + 2.0;
    var d = a + 3.0;
    for (var j = 0u; j < P.k; j++) {
        a = fma(a, m, k);
        b = fma(b, m, k);
        c = fma(c, m, k);
        d = fma(d, m, k);
    }
    Y[gid.x] = (a.x + b.y) + (c.z + d.w);
}
