// Appended to the kernels that write the KV cache (attention_store.wgsl, qk_rope.wgsl with STORE):
// one cache word per 4 elements. Flag KV_F16: f16 pairs packed in u32 words; f16 values saturate
// at ±65504 instead of becoming infinite, so a huge activation cannot turn later scores into
// inf − inf = NaN. Otherwise f32.

#if KV_F16
alias KvWord = vec2<u32>;

fn pack(x: vec4<f32>) -> vec2<u32> {
    let c = clamp(x, vec4<f32>(-65504.0), vec4<f32>(65504.0));
    return vec2<u32>(pack2x16float(c.xy), pack2x16float(c.zw));
}
#else
alias KvWord = vec4<f32>;

fn pack(x: vec4<f32>) -> vec4<f32> {
    return x;
}
#endif
