// Dequantize: one invocation per 32 elements of the chunk, written as f32 in GGUF element order.
// Float tensors whose length is not a multiple of 32 run as one flat row; P.n_out cuts the tail.

@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let gi = (wg.y * P.grid_x + wg.x) * 64u + li;
    let gpr = (P.k + 31u) / 32u;
    if (gi >= P.rows * gpr) {
        return;
    }
    let row = gi / gpr;
    let e0 = (gi % gpr) * 32u;
    let v = dq32(row_base(P.row0 + row) + (e0 / BLOCK_ELEMS) * BLK_STRIDE, (e0 % BLOCK_ELEMS) / 32u);
    let o = row * P.k + e0;
    for (var i = 0u; i < 8u; i++) {
        for (var c = 0u; c < 4u; c++) {
            let e = o + 4u * i + c;
            if (e < P.n_out) {
                Y[e] = v[i][c];
            }
        }
    }
}
