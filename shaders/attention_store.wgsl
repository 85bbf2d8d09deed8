// Writes new K and V rows into the cache: one invocation per 4 elements.
// In: K, V [token][kv_head][D] f32. Cache: [kv_head][position][D], f32 or (KV_F16) f16 pairs
// packed in u32 words. f16 values saturate at ±65504 instead of becoming infinite, so a huge
// activation cannot turn later scores into inf − inf = NaN.
//
// Bindings: 0 params, 1 K, 2 V, 3 K cache, 4 V cache.

override D: u32;
override D4: u32 = D / 4u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<f32>>;
#if KV_F16
@group(0) @binding(3) var<storage, read_write> KC: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> VC: array<vec2<u32>>;

fn pack(x: vec4<f32>) -> vec2<u32> {
    let c = clamp(x, vec4<f32>(-65504.0), vec4<f32>(65504.0));
    return vec2<u32>(pack2x16float(c.xy), pack2x16float(c.zw));
}
#else
@group(0) @binding(3) var<storage, read_write> KC: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> VC: array<vec4<f32>>;

fn pack(x: vec4<f32>) -> vec4<f32> {
    return x;
}
#endif

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let idx = (wid.x + wid.y * P.grid_x) * 64u + li;
    if (idx >= P.n_tokens * P.n_kv_heads * D4) {
        return;
    }
    let dv = idx % D4;
    let kvh = (idx / D4) % P.n_kv_heads;
    let tok = idx / (D4 * P.n_kv_heads);
    let dst = (kvh * P.ctx + P.pos0 + tok) * D4 + dv;
    KC[dst] = pack(K[idx]);
    VC[dst] = pack(V[idx]);
}
