// Combines the splits of attention_decode.wgsl: one invocation per (head, vec4 of the output).
// out = Σₛ exp(mₛ − M)·oₛ / Σₛ exp(mₛ − M)·lₛ with M = maxₛ mₛ.
//
// Bindings: 0 params, 1 partials (attention_decode.wgsl), 2 O [head][D] f32.

override D: u32;
override D4: u32 = D / 4u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> PART: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> O: array<vec4<f32>>;

#if X8
// `fast` precision: the output also quantized to 8 bits per 32 values (x8_piece.wgsl, appended),
// as quantize_x8.wgsl would, for the output projection. A workgroup's 64 vec4s are 8 whole pieces.
@group(0) @binding(3) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(4) var<storage, read_write> XS: array<vec4<f32>>;
var<workgroup> piece: array<vec4<f32>, 64>;
#endif

@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let idx = gid.x;
    let total = P.n_heads * D4;
    if (idx < total) {
        let head = idx / D4;
        let dv = idx % D4;
        let stats = P.n_heads * P.n_splits * D4 + head * P.n_splits;
        var mx = NEG;
        for (var s = 0u; s < P.n_splits; s++) {
            mx = max(mx, PART[stats + s].x);
        }
        var sum = 0.0;
        var acc = vec4<f32>(0.0);
        for (var s = 0u; s < P.n_splits; s++) {
            let ml = PART[stats + s];
            let f = exp(ml.x - mx);
            sum += f * ml.y;
            acc = fma(vec4<f32>(f), PART[(head * P.n_splits + s) * D4 + dv], acc);
        }
        let out = acc / sum;
        O[idx] = out;
#if X8
        piece[li] = out;
#endif
    }
#if X8
    workgroupBarrier();
    let p = wg.x * 8u + li;
    if (li < 8u && p * 8u < total) {
        var v: array<vec4<f32>, 8>;
        for (var i = 0u; i < 8u; i++) {
            v[i] = piece[li * 8u + i];
        }
        quantize_piece(v, p);
    }
#endif
}
