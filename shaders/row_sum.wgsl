// The sum of one value per invocation over a workgroup of 64 (one row per workgroup), appended
// to the row kernels (norm.wgsl, residual_norm.wgsl). SUBGROUPS (T2): subgroupAdd, then one
// partial per subgroup in workgroup memory; otherwise a tree in workgroup memory. Every
// invocation gets the total. It starts with a barrier, so that a kernel can call it twice (the
// second call's writes wait for every read of the first). Call it in uniform control flow.

const WG: u32 = 64u;

var<workgroup> red: array<f32, 64>;

fn row_sum(s_in: f32, li: u32, sl: u32, ss: u32) -> f32 {
    workgroupBarrier();
#if SUBGROUPS
    // Subgroups are consecutive ranges of local_invocation_index (as matvec_wg assumes).
    let s = subgroupAdd(s_in);
    if (sl == 0u) {
        red[li / ss] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var j = 0u; j < (WG + ss - 1u) / ss; j++) {
        total += red[j];
    }
    return total;
#else
    red[li] = s_in;
    workgroupBarrier();
    for (var o = WG / 2u; o > 0u; o >>= 1u) {
        if (li < o) {
            red[li] += red[li + o];
        }
        workgroupBarrier();
    }
    return red[0];
#endif
}
