// Read-bandwidth roofline: every invocation streams its own contiguous slice of W with vec4-wide
// u32 loads (P.k words per invocation) and writes one word so the reads cannot be removed.
// P.cols = 1 selects the interleaved shape instead (invocation i reads words i, i + n, ...),
// the coalesced pattern real GPUs prefer. The bench takes the faster of the two.

@group(0) @binding(3) var<storage, read_write> Y: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = nwg.x * 64u;
    let i = gid.x;
    var acc = 0u;
    if (P.cols == 0u) {
        let start = i * P.k;
        for (var j = 0u; j < P.k; j += 4u) {
            acc ^= W[start + j] ^ W[start + j + 1u] ^ W[start + j + 2u] ^ W[start + j + 3u];
        }
    } else {
        for (var j = i; j < P.rows; j += n) {
            acc ^= W[j];
        }
    }
    Y[i] = acc;
}
