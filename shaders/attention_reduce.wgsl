// Combines the splits of attention_decode.wgsl: one invocation per (head, vec4 of the output).
// out = Σₛ exp(mₛ − M)·oₛ / Σₛ exp(mₛ − M)·lₛ with M = maxₛ mₛ.
//
// Bindings: 0 params, 1 partials (attention_decode.wgsl), 2 O [head][D] f32.

override D: u32;
override D4: u32 = D / 4u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> PART: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> O: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= P.n_heads * D4) {
        return;
    }
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
    O[idx] = acc / sum;
}
