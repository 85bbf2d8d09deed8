// Y = W·X with shared-memory tiles: a workgroup of 256 computes 64 rows × 32 columns, stepping
// through K 32 elements at a time. 64 lanes dequantize one 32-element piece of a row each into
// workgroup memory; all 256 load the 32×32 tile of X; each lane then accumulates 4 rows × 2 columns.
// Workgroup memory: 8 KiB (W) + 4 KiB (X), within WebGPU's 16 KiB default.
// X: cols × k (each column contiguous); Y: cols × y_stride.

@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

var<workgroup> ws: array<vec4<f32>, 512>; // 64 rows × 8 vec4
var<workgroup> xs: array<vec4<f32>, 256>; // 32 columns × 8 vec4

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let n0 = wg.x * 64u;
    let m0 = wg.y * 32u;
    let tr = li % 16u;
    let tc = li / 16u;
    let k4 = P.k / 4u;
    var acc: array<array<f32, 2>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i][0] = 0.0;
        acc[i][1] = 0.0;
    }
    let steps = P.k / 32u;
    for (var kt = 0u; kt < steps; kt++) {
        let e0 = kt * 32u;
        if (li < 64u) {
            let r = n0 + li;
            if (r < P.rows) {
                let v = dq32(row_base(P.row0 + r) + (e0 / BLOCK_ELEMS) * BLK_STRIDE, (e0 % BLOCK_ELEMS) / 32u);
                for (var i = 0u; i < 8u; i++) {
                    ws[li * 8u + i] = v[i];
                }
            } else {
                for (var i = 0u; i < 8u; i++) {
                    ws[li * 8u + i] = vec4<f32>(0.0);
                }
            }
        }
        let c = m0 + li / 8u;
        if (c < P.cols) {
            xs[li] = X[c * k4 + kt * 8u + li % 8u];
        } else {
            xs[li] = vec4<f32>(0.0);
        }
        workgroupBarrier();
        for (var q = 0u; q < 8u; q++) {
            let x0 = xs[tc * 8u + q];
            let x1 = xs[(tc + 16u) * 8u + q];
            for (var i = 0u; i < 4u; i++) {
                let w = ws[(tr + 16u * i) * 8u + q];
                acc[i][0] += dot(w, x0);
                acc[i][1] += dot(w, x1);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = n0 + tr + 16u * i;
        for (var j = 0u; j < 2u; j++) {
            let c = m0 + tc + 16u * j;
            if (r < P.rows && c < P.cols) {
                Y[c * P.y_stride + P.y_offset + r] = acc[i][j];
            }
        }
    }
}
