// y = W·x with one invocation per ROWS rows and no barriers: the shape software adapters run
// best. Each invocation is a SIMD lane on a CPU core streaming its own rows; each 32-element
// piece of x is loaded once and used for ROWS rows, so x traffic (gathers on a CPU) is shared.

// ROWS (rows per invocation) is prepended by the pipeline: `const ROWS: u32 = …;`.

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = ((wg.y * P.grid_x + wg.x) * 64u + li) * ROWS;
    if (r0 >= P.rows) {
        return;
    }
    // Rows past the end repeat the last row; their results are not written.
    var base: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        base[r] = min(r0 + r, P.rows - 1u) * P.row_bytes;
    }
    var acc: array<vec4<f32>, ROWS>;
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            var x: V32;
            for (var i = 0u; i < 8u; i++) {
                x[i] = X[xo + i];
            }
            for (var r = 0u; r < ROWS; r++) {
                let v = dq32(base[r] + blk * BLOCK_BYTES, s);
                var a = acc[r];
                for (var i = 0u; i < 8u; i++) {
                    a += v[i] * x[i];
                }
                acc[r] = a;
            }
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        if (r0 + r < P.rows) {
            let a = acc[r];
            Y[P.y_offset + r0 + r] = (a.x + a.y) + (a.z + a.w);
        }
    }
}
