// y = W·x with LANES invocations per row (64 / LANES rows per workgroup): adjacent lanes read
// adjacent 32-element pieces of the row, so loads coalesce; partial sums are reduced with
// subgroup shuffles (T2, LANES <= the subgroup size) or in workgroup memory (T0, T1).

override LANES: u32 = 32u;

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

#if !SUBGROUPS
var<workgroup> red: array<f32, 64>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wg.y * P.grid_x + wg.x) * (64u / LANES) + li / LANES;
    let lane = li % LANES;
    var acc = vec4<f32>(0.0);
    if (row < P.rows) {
        let base = row * P.row_bytes;
        let pieces = P.k / 32u;
        for (var g = lane; g < pieces; g += LANES) {
            let e0 = g * 32u;
            let v = dq32(base + (e0 / BLOCK_ELEMS) * BLOCK_BYTES, (e0 % BLOCK_ELEMS) / 32u);
            let xo = e0 / 4u;
            for (var i = 0u; i < 8u; i++) {
                acc += v[i] * X[xo + i];
            }
        }
    }
    var sum = (acc.x + acc.y) + (acc.z + acc.w);
#if SUBGROUPS
    // Lanes of one row are LANES consecutive invocations inside one subgroup.
    for (var o = LANES / 2u; o > 0u; o >>= 1u) {
        sum += subgroupShuffleXor(sum, o);
    }
#else
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
    if (lane == 0u && row < P.rows) {
        Y[P.y_offset + row] = sum;
    }
}
