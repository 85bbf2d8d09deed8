// Read-bandwidth roofline. P.cols = 0: every invocation streams its own contiguous slice of
// P.k vec4 words with four independent accumulators (what CPU-backed adapters run best).
// P.cols = 1: invocation i reads vec4 words i, i + n, i + 2n, … (coalesced across a real
// GPU's lanes). The bench takes the faster. One word per invocation is written so the reads
// cannot be optimized away.

@group(0) @binding(1) var<storage, read> W4: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = nwg.x * 64u;
    let i = gid.x;
    var a = vec4<u32>(0u);
    var b = vec4<u32>(0u);
    var c = vec4<u32>(0u);
    var d = vec4<u32>(0u);
    if (P.cols == 0u) {
        let start = i * P.k;
        for (var j = 0u; j < P.k; j += 4u) {
            a ^= W4[start + j];
            b ^= W4[start + j + 1u];
            c ^= W4[start + j + 2u];
            d ^= W4[start + j + 3u];
        }
    } else {
        for (var j = i; j < P.rows; j += n) {
            a ^= W4[j];
        }
    }
    let r = a ^ b ^ c ^ d;
    Y[i] = r.x ^ r.y ^ r.z ^ r.w;
}
