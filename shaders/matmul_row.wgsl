// Y = W·X for X with P.cols columns: one invocation per (row, group of 4 columns), no barriers.
// Each piece of the row is dequantized once and used for 4 columns. For software adapters.
// X: cols × k (column-major: each column contiguous); Y: cols × y_stride.

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let idx = (wg.y * P.grid_x + wg.x) * 64u + li;
    let row = idx % P.rows;
    let c0 = (idx / P.rows) * 4u;
    if (c0 >= P.cols) {
        return;
    }
    let nc = min(4u, P.cols - c0);
    let base = row * P.row_bytes;
    let k4 = P.k / 4u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let v = dq32(base + blk * BLOCK_BYTES, s);
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            for (var c = 0u; c < nc; c++) {
                let xc = (c0 + c) * k4 + xo;
                var a = acc[c];
                for (var i = 0u; i < 8u; i++) {
                    a += v[i] * X[xc + i];
                }
                acc[c] = a;
            }
        }
    }
    for (var c = 0u; c < nc; c++) {
        let a = acc[c];
        Y[(c0 + c) * P.y_stride + P.y_offset + row] = (a.x + a.y) + (a.z + a.w);
    }
}
