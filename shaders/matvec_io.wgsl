// The matvec kernels' x and y (matvec_row.wgsl and matvec_wg.wgsl), appended to both.

#if X8
// `fast` precision: x as 8-bit quants (two vec4 words per 32-value piece) and per-piece scales.
@group(0) @binding(2) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> XS: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
#endif
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#if SPLIT
// Three outputs (q, k and v from one concatenated weight): rows [0, split1) go to Y,
// [split1, split2) to Y2 and the rest to Y3, each from its index 0.
@group(0) @binding(7) var<storage, read_write> Y2: array<f32>;
@group(0) @binding(8) var<storage, read_write> Y3: array<f32>;
#endif

// Writes row `row` of the result.
fn put(row: u32, v: f32) {
#if SPLIT
    if (row < P.split1) {
        Y[row] = v;
    } else if (row < P.split2) {
        Y2[row - P.split1] = v;
    } else {
        Y3[row - P.split2] = v;
    }
#else
    Y[P.y_offset + row] = v;
#endif
}
