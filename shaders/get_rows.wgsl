// Embedding lookup: Y[t] = dequantized row IDS[t] of W, for the tokens whose row lies in this
// chunk of W (rows P.row0 .. P.row0 + P.rows of the tensor). One invocation per 32 elements.

@group(0) @binding(2) var<storage, read> IDS: array<u32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let gi = (wg.y * P.grid_x + wg.x) * 64u + li;
    let pieces = P.k / 32u;
    if (gi >= P.cols * pieces) {
        return;
    }
    let t = gi / pieces;
    let id = IDS[t];
    if (id < P.row0 || id >= P.row0 + P.rows) {
        return;
    }
    let e0 = (gi % pieces) * 32u;
    let v = dq32(row_base(id - P.row0) + (e0 / BLOCK_ELEMS) * BLK_STRIDE, (e0 % BLOCK_ELEMS) / 32u);
    let o = t * P.k + e0;
    for (var i = 0u; i < 8u; i++) {
        Y[o + 4u * i] = v[i].x;
        Y[o + 4u * i + 1u] = v[i].y;
        Y[o + 4u * i + 2u] = v[i].z;
        Y[o + 4u * i + 3u] = v[i].w;
    }
}
