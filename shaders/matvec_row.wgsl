// y = W·x with one invocation per ROWS rows and no barriers: the shape software adapters run
// best. Each invocation is a SIMD lane on a CPU core streaming its own rows; each 32-element
// piece of x is loaded once and used for ROWS rows, so x traffic (gathers on a CPU) is shared.

// ROWS (rows per invocation) and ROW_GROUP (invocations per workgroup, ops::matvec::ROW_GROUP)
// are prepended by the pipeline: `const ROWS: u32 = …;`. On lavapipe every storage load,
// x's included, is a loop over the SIMD lanes, so rows per invocation are as many as the
// dispatch's size allows (ops::matvec::rows_per_invocation), and workgroups small, so that
// even a 640-row matrix is spread over every core.
// GLU (with GELU or SILU): W holds 2·P.rows rows, gate rows then up rows (a fused gate+up
// projection in one binding); row r writes act(gate_r·x) · (up_r·x), so the FFN's gate, up and
// activation are one dispatch. act_fns.wgsl is appended.

// x, y and `put` (the row's output; SPLIT: three outputs) come from matvec_io.wgsl.

// Row r of invocation inv: ROWS consecutive rows per invocation, or with rows interleaved by
// eight (ROWS8) one of every 8 (lane l of 8 consecutive invocations takes rows ≡ l mod 8), so
// that the lanes of a subgroup read adjacent blocks.
fn row_of(inv: u32, r: u32) -> u32 {
#if ROWS8
    return ((inv >> 3u) * ROWS + r) * 8u + (inv & 7u);
#else
    return inv * ROWS + r;
#endif
}

@compute @workgroup_size(ROW_GROUP)
#if SHARE_X
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {
#else
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
#endif
    let inv = (wg.y * P.grid_x + wg.x) * ROW_GROUP + li;
#if !SHARE_X
    // (With SHARE_X no early exit: every lane takes part in sharing x.)
    if (row_of(inv, 0u) >= P.rows) {
        return;
    }
#endif
    // Rows past the end repeat the last row; their results are not written.
    var base: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        base[r] = row_base(min(row_of(inv, r), P.rows - 1u));
    }
    var acc: array<vec4<f32>, ROWS>;
#if GLU
    var acc_up: array<vec4<f32>, ROWS>;
    // Up row r lies P.rows rows after gate row r: P.rows · row_bytes further in GGUF's order,
    // and with rows interleaved by eight too, since P.rows is then a multiple of 8
    // (ops::matvec::encode_glu).
    let up_off = P.rows * P.row_bytes;
#endif
    let nb = P.k / BLOCK_ELEMS;
    for (var blk = 0u; blk < nb; blk++) {
        for (var s = 0u; s < BLOCK_ELEMS / 32u; s++) {
#if X8
            let piece = (blk * BLOCK_ELEMS) / 32u + s;
#if SHARE_X
            let xm = XQ[2u * piece + (sl & 1u)];
            let xa = subgroupBroadcast(xm, 0u);
            let xb = subgroupBroadcast(xm, 1u);
#else
            let xa = XQ[2u * piece];
            let xb = XQ[2u * piece + 1u];
#endif
            let xq = Q32(xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
            let xs = XS[piece];
            for (var r = 0u; r < ROWS; r++) {
                acc[r].x += xdot32(base[r] + blk * BLK_STRIDE, s, xq, xs);
#if GLU
                acc_up[r].x += xdot32(base[r] + up_off + blk * BLK_STRIDE, s, xq, xs);
#endif
            }
#else
            let xo = (blk * BLOCK_ELEMS + s * 32u) / 4u;
            var x: V32;
#if SHARE_X
            // SHARE_STEPS loads instead of eight (matmul_row.wgsl says how).
            for (var h = 0u; h < SHARE_STEPS; h++) {
                let xm = X[xo + h * SHARE_LANES + (sl % SHARE_LANES)];
                for (var i = 0u; i < SHARE_LANES; i++) {
                    x[h * SHARE_LANES + i] = subgroupBroadcast(xm, i);
                }
            }
#else
            for (var i = 0u; i < 8u; i++) {
                x[i] = X[xo + i];
            }
#endif
            for (var r = 0u; r < ROWS; r++) {
                let v = dq32(base[r] + blk * BLK_STRIDE, s);
                var a = acc[r];
                for (var i = 0u; i < 8u; i++) {
                    a += v[i] * x[i];
                }
                acc[r] = a;
#if GLU
                let vu = dq32(base[r] + up_off + blk * BLK_STRIDE, s);
                var au = acc_up[r];
                for (var i = 0u; i < 8u; i++) {
                    au += vu[i] * x[i];
                }
                acc_up[r] = au;
#endif
            }
#endif
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = row_of(inv, r);
        if (row < P.rows) {
            let a = acc[r];
#if GLU
            let au = acc_up[r];
            Y[P.y_offset + row] = glu((a.x + a.y) + (a.z + a.w), (au.x + au.y) + (au.z + au.w));
#else
            put(row, (a.x + a.y) + (a.z + a.w));
#endif
        }
    }
}
