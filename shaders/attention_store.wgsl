// Writes new K and V rows into the cache: one invocation per 4 elements (kv_pack.wgsl is
// appended). In: K, V [token][kv_head][D] f32. Cache: [kv_head][position][D] as `KvWord`s.
// The decode and prefill forwards store through qk_rope.wgsl (flag STORE) instead.
//
// Bindings: 0 params, 1 K, 2 V, 3 K cache, 4 V cache.

override D: u32;
override D4: u32 = D / 4u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> KC: array<KvWord>;
@group(0) @binding(4) var<storage, read_write> VC: array<KvWord>;

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
