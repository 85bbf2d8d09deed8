// Appended to attention_prefill.wgsl and attention_decode.wgsl (src/ops/attention.rs).
// Flag KV_F16: the cache holds f16 pairs in u32 words.

// K and V cache, [kv_head][position][head_dim], read 4 elements at a time. f16 pairs are
// unpacked with `unpack2x16float`, which every tier has, so a cache written at T1 stays
// readable by T0 kernels (and it is the faster f16 load on lavapipe).
#if KV_F16
@group(0) @binding(2) var<storage, read> KC: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> VC: array<vec2<u32>>;

fn load_k(i: u32) -> vec4<f32> {
    let w = KC[i];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn load_v(i: u32) -> vec4<f32> {
    let w = VC[i];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
#else
@group(0) @binding(2) var<storage, read> KC: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> VC: array<vec4<f32>>;

fn load_k(i: u32) -> vec4<f32> {
    return KC[i];
}

fn load_v(i: u32) -> vec4<f32> {
    return VC[i];
}
#endif
