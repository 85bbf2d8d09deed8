// Y = W·X for X with P.cols columns: one invocation per (row, group of COLS columns), no barriers.
// Each 32-element piece of the row is dequantized once and used for COLS columns. For software
// adapters. The column group is the workgroup's y, so X addresses are uniform across a workgroup
// (a CPU adapter loads them once instead of gathering per lane). Loops have constant trip counts
// so they unroll and the accumulators stay in registers; columns past the end re-read the last
// column and are not written.
// X: cols × k (column-major: each column contiguous); Y: cols × y_stride.

const COLS: u32 = 4u;

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = min(wg.x * 64u + li, P.rows - 1u);
    let c0 = wg.y * COLS;
    let base = (P.row0 + row) * P.row_bytes;
    let k4 = P.k / 4u;
    var xc: array<u32, COLS>;
    for (var c = 0u; c < COLS; c++) {
        xc[c] = min(c0 + c, P.cols - 1u) * k4;
    }
    var acc: array<vec4<f32>, COLS>;
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let v = dq32(base + blk * BLOCK_BYTES, s);
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            for (var c = 0u; c < COLS; c++) {
                var a = acc[c];
                for (var i = 0u; i < 8u; i++) {
                    a += v[i] * X[xc[c] + xo + i];
                }
                acc[c] = a;
            }
        }
    }
    for (var c = 0u; c < COLS; c++) {
        if (c0 + c < P.cols && wg.x * 64u + li < P.rows) {
            let a = acc[c];
            Y[(c0 + c) * P.y_stride + P.y_offset + row] = (a.x + a.y) + (a.z + a.w);
        }
    }
}
