// Y = W·X for X with P.cols columns: one invocation per (MM_ROWS rows, COLS columns), no
// barriers. For software adapters, where a storage load is a loop over the SIMD lanes with a
// bounds check per lane, even when every lane reads the same address (Mesa 22.3's lavapipe):
// loads, not arithmetic, bound this kernel. So per 32-element piece the COLS columns' x (32
// words each) are loaded once and used for MM_ROWS rows, and each row's piece is dequantized
// once and used for COLS columns: (MM_ROWS·w + 32·COLS) / (MM_ROWS·COLS) words loaded per row
// and column, w being a piece's weight words (the previous one row × 4 columns loaded
// (w + 128) / 4). 4 × 8 measured best on both software adapters: 8 × 8 was faster on
// lavapipe, but SwiftShader's JIT runs out of memory compiling it.
// The loops have literal bounds, so they are unrolled in the source (gpu::shader::unroll) and
// the accumulators and x stay in registers (or plain stack spills, which cost far less than
// storage loads). Rows and columns past the end repeat the last one and are not written.
// X: cols × k (column-major: each column contiguous); Y: cols × y_stride.

const COLS: u32 = 8u;
const MM_ROWS: u32 = 4u;

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(16)
#if SHARE_X
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
#else
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
#endif
    let inv = wg.x * 16u + li;
    // The invocation's rows: MM_ROWS consecutive ones, or with rows interleaved by eight
    // (ROWS8) one of every 8, so that the lanes of a subgroup read adjacent blocks.
    var row: array<u32, MM_ROWS>;
    for (var r = 0u; r < 4u; r++) {
#if ROWS8
        row[r] = ((inv >> 3u) * MM_ROWS + r) * 8u + (inv & 7u);
#else
        row[r] = inv * MM_ROWS + r;
#endif
    }
    let c0 = wg.y * COLS;
    let k4 = P.k / 4u;
    var xc: array<u32, COLS>;
    for (var c = 0u; c < 8u; c++) {
        xc[c] = min(c0 + c, P.cols - 1u) * k4;
    }
    var base: array<u32, MM_ROWS>;
    for (var r = 0u; r < 4u; r++) {
        base[r] = row_base(P.row0 + min(row[r], P.rows - 1u));
    }
    // acc[r * COLS + c]
    var acc: array<vec4<f32>, 32>;
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            var x: array<V32, COLS>;
#if SHARE_X
            // Lane sl loads vec4s sl % SHARE_LANES (+ SHARE_LANES) of each column's piece and
            // the subgroup's other lanes take them from there: SHARE_STEPS loads per column
            // instead of eight (SHARE_LANES, SHARE_STEPS: see shader.rs).
            var mine: array<vec4<f32>, 8u * SHARE_STEPS>;
            for (var h = 0u; h < SHARE_STEPS; h++) {
                for (var c = 0u; c < 8u; c++) {
                    mine[h * 8u + c] = X[xc[c] + xo + h * SHARE_LANES + (sl % SHARE_LANES)];
                }
            }
            for (var c = 0u; c < 8u; c++) {
                for (var h = 0u; h < SHARE_STEPS; h++) {
                    for (var i = 0u; i < SHARE_LANES; i++) {
                        x[c][h * SHARE_LANES + i] = subgroupBroadcast(mine[h * 8u + c], i);
                    }
                }
            }
#else
            for (var c = 0u; c < 8u; c++) {
                for (var i = 0u; i < 8u; i++) {
                    x[c][i] = X[xc[c] + xo + i];
                }
            }
#endif
            for (var r = 0u; r < 4u; r++) {
                let v = dq32(base[r] + blk * BLK_STRIDE, s);
                for (var c = 0u; c < 8u; c++) {
                    var a = acc[r * COLS + c];
                    for (var i = 0u; i < 8u; i++) {
                        a += v[i] * x[c][i];
                    }
                    acc[r * COLS + c] = a;
                }
            }
        }
    }
    for (var r = 0u; r < 4u; r++) {
        for (var c = 0u; c < 8u; c++) {
            if (c0 + c < P.cols && row[r] < P.rows) {
                let a = acc[r * COLS + c];
                Y[(c0 + c) * P.y_stride + P.y_offset + row[r]] = (a.x + a.y) + (a.z + a.w);
            }
        }
    }
}
