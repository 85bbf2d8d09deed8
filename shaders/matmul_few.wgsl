// Y = W·X for a few columns of X (FEW_COLS, 2 to 8: speculative decoding's verify pass and short
// prompts): one invocation per 2 rows × all the columns, no barriers. Each 32-value piece of a
// row is dequantized once and used for every column; x arrives column by column (by subgroup
// broadcasts where lanes share it); the accumulators are scalars. So what a lane holds at once
// (two rows' piece, one column's piece, 2·FEW_COLS sums) fits a CPU SIMD lane's registers, which
// the prefill kernel's 4 × 8 tile of vec4 sums does not: on Mesa 25's lavapipe 2 columns cost
// 1.1–1.2 times one column and 4 columns 1.8–1.95 times (examples/few_columns.rs), where the
// prefill kernel costs about as much per column as the matvec.
// Rows and columns past the end repeat the last one and are not written.
// X: cols × k (column-major: each column contiguous); Y: cols × y_stride. FEW_COLS is replaced
// by its literal (gpu::shader), so the column loops are unrolled.

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(16)
#if SHARE_X
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
#else
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
#endif
    let inv = wg.x * 16u + li;
    // The invocation's 2 rows: consecutive, or with rows interleaved by eight (ROWS8) one of
    // every 8, so that the lanes of a subgroup read adjacent blocks.
    var row: array<u32, 2>;
    var base: array<u32, 2>;
    for (var r = 0u; r < 2u; r++) {
#if ROWS8
        row[r] = ((inv >> 3u) * 2u + r) * 8u + (inv & 7u);
#else
        row[r] = inv * 2u + r;
#endif
        base[r] = row_base(P.row0 + min(row[r], P.rows - 1u));
    }
    let k4 = P.k / 4u;
    var xc: array<u32, FEW_COLS>;
    for (var c = 0u; c < FEW_COLS; c++) {
        xc[c] = min(c, P.cols - 1u) * k4;
    }
    // acc[r · FEW_COLS + c]
    var acc: array<f32, 2u * FEW_COLS>;
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            let v0 = dq32(base[0] + blk * BLK_STRIDE, s);
            let v1 = dq32(base[1] + blk * BLK_STRIDE, s);
            for (var c = 0u; c < FEW_COLS; c++) {
                var x: V32;
#if SHARE_X
                for (var h = 0u; h < SHARE_STEPS; h++) {
                    let xm = X[xc[c] + xo + h * SHARE_LANES + (sl % SHARE_LANES)];
                    for (var i = 0u; i < SHARE_LANES; i++) {
                        x[h * SHARE_LANES + i] = subgroupBroadcast(xm, i);
                    }
                }
#else
                for (var i = 0u; i < 8u; i++) {
                    x[i] = X[xc[c] + xo + i];
                }
#endif
                var a0 = vec4<f32>(0.0);
                var a1 = vec4<f32>(0.0);
                for (var i = 0u; i < 8u; i++) {
                    a0 += v0[i] * x[i];
                    a1 += v1[i] * x[i];
                }
                acc[c] += (a0.x + a0.y) + (a0.z + a0.w);
                acc[FEW_COLS + c] += (a1.x + a1.y) + (a1.z + a1.w);
            }
        }
    }
    for (var r = 0u; r < 2u; r++) {
        for (var c = 0u; c < FEW_COLS; c++) {
            if (c < P.cols && row[r] < P.rows) {
                Y[c * P.y_stride + P.y_offset + row[r]] = acc[r * FEW_COLS + c];
            }
        }
    }
}
