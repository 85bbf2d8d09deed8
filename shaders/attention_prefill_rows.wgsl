// Prefill attention for CPU-like adapters (the `row` prefill family at T2): the same online
// softmax as attention_prefill.wgsl, O = softmax(scale·Q·Kᵀ + mask)·V, in another shape.
//
// On lavapipe every load, from workgroup memory as from a storage buffer, is a loop over the
// SIMD lanes, so staging K/V tiles in workgroup memory pays three times per word (load, store,
// load again) and each row's lanes load the whole tile again. Here the T lanes of a lane group
// (one subgroup on lavapipe) serve R query rows at once, each lane owning NV vec4s of the head
// (interleaved: lane t owns vec4s t, t + T, …) for all R rows, and load K and V straight from
// the cache: every loaded vec4 is used for R rows, and there is no workgroup memory and no
// barrier. Scores are summed over the T lanes with subgroup shuffles (T ≤ the subgroup size).
//
// A workgroup owns BR = (64 / T)·R consecutive rows, a row being a (token, query head) pair,
// consecutive in (token, head within the kv head's group); lane group i owns rows
// [i·R, i·R + R) of the tile. Every lane walks the tile's visible key range [k_lo, k_hi) in
// steps of BC keys, so subgroup operations stay in uniform control flow; masks are per row.
//
// Bindings: 0 params, 1 Q [token][head][D] f32, 2 K cache, 3 V cache, 4 O [token][head][D] f32.
// Flags: KV_F16 (attention_kv.wgsl).

override D: u32;               // head_dim
override T: u32;               // lanes per lane group (a power of two ≤ the subgroup size)
override BC: u32;              // keys per step, ≤ 8
override D4: u32 = D / 4u;     // vec4s per head
override NV: u32 = D4 / T;     // vec4s per lane and row, ≤ 8
// R, query rows per lane group, is prepended (`const R: u32 = …;`, attention.rs).
override BR: u32 = 64u / T * R; // query rows per workgroup

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> O: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tile = wid.x + wid.y * P.grid_x;
    let kvh = wid.z;
    let g = P.group;
    let t = li % T;

    // The keys any of this tile's rows sees: [k_lo, k_hi).
    let first = tile * BR;
    let keys = tile_keys(first, BR);
    let k_lo = keys.x;
    let k_hi = keys.y;

    // This lane's R rows: q (scaled) and the running output, [row][NV] with R·NV ≤ 32.
    let row0 = first + (li / T) * R;
    var q: array<vec4<f32>, 32>;
    var o: array<vec4<f32>, 32>;
    var m: array<f32, R>;
    var l: array<f32, R>;
    var pq: array<u32, R>;
    var ok: array<bool, R>;
    var qo: array<u32, R>;
    for (var j = 0u; j < R; j++) {
        let flat = row0 + j;
        ok[j] = flat / g < P.n_tokens;
        let tok = min(flat / g, P.n_tokens - 1u);
        pq[j] = P.pos0 + tok;
        qo[j] = (tok * P.n_heads + kvh * g + flat % g) * D4 + t;
        for (var i = 0u; i < NV; i++) {
            q[j * NV + i] = Q[qo[j] + i * T] * P.scale;
            o[j * NV + i] = vec4<f32>(0.0);
        }
        m[j] = NEG;
        l[j] = 0.0;
    }

    let kv0 = kvh * P.ctx;
    var kv: array<vec4<f32>, 8>;
    var s: array<f32, 32>; // scores, then probabilities: [row][BC], R·BC ≤ 32
    for (var kb = k_lo; kb < k_hi; kb += BC) {
        // This lane's share of each score (keys past k_hi repeat the last one, masked below).
        for (var c = 0u; c < BC; c++) {
            let base = (kv0 + min(kb + c, k_hi - 1u)) * D4 + t;
            for (var i = 0u; i < NV; i++) {
                kv[i] = load_k(base + i * T);
            }
            for (var j = 0u; j < R; j++) {
                var acc = vec4<f32>(0.0);
                for (var i = 0u; i < NV; i++) {
                    acc = fma(q[j * NV + i], kv[i], acc);
                }
                s[j * BC + c] = (acc.x + acc.y) + (acc.z + acc.w);
            }
        }
        // The sums over the lane group.
        for (var e = 0u; e < R * BC; e++) {
            for (var w = 1u; w < T; w <<= 1u) {
                s[e] += subgroupShuffleXor(s[e], w);
            }
        }
        // Per row: soft-capping (Gemma 2), masking, and the online softmax update.
        for (var j = 0u; j < R; j++) {
            var mx = m[j];
            for (var c = 0u; c < BC; c++) {
                var v = s[j * BC + c];
                if (P.softcap > 0.0) {
                    v = softcap(v, P.softcap);
                }
                s[j * BC + c] = v;
                if (visible(kb + c, pq[j], ok[j])) {
                    mx = max(mx, v);
                }
            }
            let alpha = exp(m[j] - mx);
            var ps = 0.0;
            for (var c = 0u; c < BC; c++) {
                var p = 0.0;
                if (visible(kb + c, pq[j], ok[j])) {
                    p = exp(s[j * BC + c] - mx);
                }
                s[j * BC + c] = p;
                ps += p;
            }
            l[j] = l[j] * alpha + ps;
            m[j] = mx;
            for (var i = 0u; i < NV; i++) {
                o[j * NV + i] *= alpha;
            }
        }
        for (var c = 0u; c < BC; c++) {
            let base = (kv0 + min(kb + c, k_hi - 1u)) * D4 + t;
            for (var i = 0u; i < NV; i++) {
                kv[i] = load_v(base + i * T);
            }
            for (var j = 0u; j < R; j++) {
                let p = vec4<f32>(s[j * BC + c]);
                for (var i = 0u; i < NV; i++) {
                    o[j * NV + i] = fma(p, kv[i], o[j * NV + i]);
                }
            }
        }
    }

    for (var j = 0u; j < R; j++) {
        if (ok[j]) {
            for (var i = 0u; i < NV; i++) {
                O[qo[j] + i * T] = o[j * NV + i] / l[j];
            }
        }
    }
}
