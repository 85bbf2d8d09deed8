// y = W·x with LANES invocations per row (64 / LANES rows per workgroup): adjacent lanes read
// adjacent 32-element pieces of the row, so loads coalesce; partial sums are reduced with
// subgroup shuffles (T2, LANES <= the subgroup size) or in workgroup memory (T0, T1).

// GLU (with GELU or SILU): W holds 2·P.rows rows, gate then up; row r writes
// act(gate_r·x) · (up_r·x) (act_fns.wgsl is appended).

override LANES: u32 = 32u;

// x, y and `put` (the row's output; SPLIT: three outputs) come from matvec_io.wgsl.

#if !SUBGROUPS
var<workgroup> red: array<f32, 64>;
#endif

// The sum of `v` over the LANES lanes of a row (every lane of the row gets it).
fn lane_sum(v: f32, li: u32, lane: u32) -> f32 {
    var sum = v;
#if SUBGROUPS
    // Lanes of one row are LANES consecutive invocations inside one subgroup.
    for (var o = LANES / 2u; o > 0u; o >>= 1u) {
        sum += subgroupShuffleXor(sum, o);
    }
#else
    workgroupBarrier();
    red[li] = sum;
    workgroupBarrier();
    for (var o = LANES / 2u; o > 0u; o >>= 1u) {
        if (lane < o) {
            red[li] += red[li + o];
        }
        workgroupBarrier();
    }
    sum = red[li];
#endif
    return sum;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.y * P.grid_x + wg.x) * (64u / LANES) + li / LANES;
    let lane = li % LANES;
    var acc = vec4<f32>(0.0);
#if GLU
    var acc_up = vec4<f32>(0.0);
#endif
    if (row < P.rows) {
        let base = row_base(row);
        let pieces = P.k / 32u;
        for (var g = lane; g < pieces; g += LANES) {
            let e0 = g * 32u;
            let bo = base + (e0 / BLOCK_ELEMS) * BLK_STRIDE;
#if GLU
            let bu = row_base(row + P.rows) + (e0 / BLOCK_ELEMS) * BLK_STRIDE;
#endif
#if X8
            let xa = XQ[2u * g];
            let xb = XQ[2u * g + 1u];
            let xq = Q32(xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w);
            let xs = XS[g];
            acc.x += xdot32(bo, (e0 % BLOCK_ELEMS) / 32u, xq, xs);
#if GLU
            acc_up.x += xdot32(bu, (e0 % BLOCK_ELEMS) / 32u, xq, xs);
#endif
#else
            let v = dq32(bo, (e0 % BLOCK_ELEMS) / 32u);
            let xo = e0 / 4u;
            for (var i = 0u; i < 8u; i++) {
                acc += v[i] * X[xo + i];
            }
#if GLU
            let vu = dq32(bu, (e0 % BLOCK_ELEMS) / 32u);
            for (var i = 0u; i < 8u; i++) {
                acc_up += vu[i] * X[xo + i];
            }
#endif
#endif
        }
    }
    let sum = lane_sum((acc.x + acc.y) + (acc.z + acc.w), li, lane);
#if GLU
    let sum_up = lane_sum((acc_up.x + acc_up.y) + (acc_up.z + acc_up.w), li, lane);
#endif
    if (lane == 0u && row < P.rows) {
#if GLU
        Y[P.y_offset + row] = glu(sum, sum_up);
#else
        put(row, sum);
#endif
    }
}
