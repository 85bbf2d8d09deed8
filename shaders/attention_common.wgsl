// Appended to every attention kernel (src/ops/attention.rs): the uniform block.

// `AttnParams` in src/ops/attention.rs.
struct Params {
    n_tokens: u32,     // query tokens (prefill), 1 (decode)
    pos0: u32,         // position of the first query token
    n_heads: u32,
    n_kv_heads: u32,
    group: u32,        // query heads per kv head
    ctx: u32,          // positions per kv head in the cache
    window: u32,       // sliding window, 0 = none
    scale: f32,        // score scale, usually 1/sqrt(head_dim)
    chunk: u32,        // decode: keys per split
    n_splits: u32,     // decode: splits per head
    grid_x: u32,       // workgroups along x (larger grids wrap into y)
    heads_per_wg: u32, // decode: query heads per workgroup
    key_lanes: u32,    // decode: rows per head, each over its own keys
    kv_lo: u32,        // decode: first visible key
    softcap: f32,      // scores become softcap·tanh(s / softcap) (Gemma 2); 0 = none
    _pad1: u32,
}

// The running maximum before any key was seen. Finite, so that `exp(m - mx)` is 1, never NaN,
// while a row has seen only masked keys; scores below it are treated as masked.
const NEG: f32 = -1.0e30;

// llama.cpp's rule: causal, and with a window w only the w most recent positions.
fn visible(key: u32, pq: u32, row_ok: bool) -> bool {
    return row_ok && key <= pq && (P.window == 0u || pq - key < P.window);
}

// The prefill kernels: the keys any of the query rows [first, first + rows) sees, as
// (k_lo, k_hi). Rows are (token, query head) pairs, consecutive in (token, head within the kv
// head's group).
fn tile_keys(first: u32, rows: u32) -> vec2<u32> {
    let tok_a = first / P.group;
    let tok_b = min((first + rows - 1u) / P.group, P.n_tokens - 1u);
    var k_lo = 0u;
    if (P.window > 0u && P.pos0 + tok_a + 1u > P.window) {
        k_lo = P.pos0 + tok_a + 1u - P.window;
    }
    return vec2<u32>(k_lo, P.pos0 + tok_b + 1u);
}
