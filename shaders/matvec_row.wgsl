// y = W·x with one invocation per row and no barriers: the shape software adapters run best,
// since each invocation is a SIMD lane on a CPU core streaming its own row.

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.row_bytes;
    let nb = P.k / BLOCK_ELEMS;
    var acc = vec4<f32>(0.0);
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let v = dq32(base + blk * BLOCK_BYTES, s);
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            for (var i = 0u; i < 8u; i++) {
                acc += v[i] * X[xo + i];
            }
        }
    }
    Y[P.y_offset + row] = (acc.x + acc.y) + (acc.z + acc.w);
}
