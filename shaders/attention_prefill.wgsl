// Prefill attention, flash style: O = softmax(scale·Q·Kᵀ + mask)·V without a score matrix.
//
// A workgroup owns BR query rows, a row being a (token, query head) pair; the rows of a tile are
// consecutive in (token, head within the kv head's group), so GQA heads that share a kv head
// share every K/V tile. T lanes serve a row, each owning NV vec4s of q and of the output,
// interleaved (lane t owns vec4s t, t + T, …) so adjacent lanes touch adjacent memory.
// The workgroup walks the visible key range in tiles of BC keys staged in workgroup memory and
// keeps, per row, a running maximum m, a running sum l and an unnormalized output o (online
// softmax), rescaling l and o by exp(m_old − m_new) whenever the maximum grows.
//
// Bindings: 0 params, 1 Q [token][head][D] f32, 2 K cache, 3 V cache, 4 O [token][head][D] f32.
// Flags: KV_F16 (attention_kv.wgsl), SUBGROUPS (partial scores summed with subgroup shuffles;
// the T lanes of a row must sit in one subgroup: T ≤ the minimum subgroup size).

override D: u32;               // head_dim
override T: u32;               // lanes per query row (a power of two)
override BC: u32;              // keys per tile, ≤ 32
override D4: u32 = D / 4u;     // vec4s per head
override NV: u32 = D4 / T;     // vec4s per lane, ≤ 8
override BR: u32 = 64u / T;    // query rows per workgroup

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> O: array<vec4<f32>>;

var<workgroup> kt: array<vec4<f32>, BC * D4>; // K tile [key][D]
var<workgroup> vt: array<vec4<f32>, BC * D4>; // V tile [key][D]
#if !SUBGROUPS
var<workgroup> red: array<f32, 64u * BC>;     // partial scores [row][key][lane]
var<workgroup> sc: array<f32, BR * BC>;       // scores [row][key]
#endif

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tile = wid.x + wid.y * P.grid_x;
    let kvh = wid.z;
    let g = P.group;
    let r = li / T;
    let t = li % T;

    // The keys any of this tile's rows sees: [k_lo, k_hi).
    let first = tile * BR;
    let keys = tile_keys(first, BR);
    let k_lo = keys.x;
    let k_hi = keys.y;

    let flat = first + r;
    let row_ok = flat / g < P.n_tokens;
    let tok = min(flat / g, P.n_tokens - 1u);
    let head = kvh * g + flat % g;
    let pq = P.pos0 + tok;

    let qo = (tok * P.n_heads + head) * D4 + t;
    var q: array<vec4<f32>, 8>;
    var o: array<vec4<f32>, 8>;
    for (var i = 0u; i < NV; i++) {
        q[i] = Q[qo + i * T] * P.scale;
        o[i] = vec4<f32>(0.0);
    }
    var m = NEG;
    var l = 0.0;
    var s: array<f32, 32>;

    let kv0 = kvh * P.ctx;
    for (var kb = k_lo; kb < k_hi; kb += BC) {
        // Stage the tile; keys past k_hi repeat the last one (masked below).
        for (var e = li; e < BC * D4; e += 64u) {
            let src = (kv0 + min(kb + e / D4, k_hi - 1u)) * D4 + e % D4;
            kt[e] = load_k(src);
            vt[e] = load_v(src);
        }
        workgroupBarrier();

        // This lane's share of each score, then the sum over the row's T lanes.
        for (var c = 0u; c < BC; c++) {
            var acc = vec4<f32>(0.0);
            for (var i = 0u; i < NV; i++) {
                acc = fma(q[i], kt[c * D4 + t + i * T], acc);
            }
            s[c] = (acc.x + acc.y) + (acc.z + acc.w);
        }
#if SUBGROUPS
        for (var c = 0u; c < BC; c++) {
            for (var w = 1u; w < T; w <<= 1u) {
                s[c] += subgroupShuffleXor(s[c], w);
            }
        }
#else
        for (var c = 0u; c < BC; c++) {
            red[(r * BC + c) * T + t] = s[c];
        }
        workgroupBarrier();
        for (var c = t; c < BC; c += T) {
            var a = 0.0;
            for (var u = 0u; u < T; u++) {
                a += red[(r * BC + c) * T + u];
            }
            sc[r * BC + c] = a;
        }
        workgroupBarrier();
        for (var c = 0u; c < BC; c++) {
            s[c] = sc[r * BC + c];
        }
#endif
        // Soft-capping (Gemma 2) on the scaled score, before masking and softmax.
        if (P.softcap > 0.0) {
            for (var c = 0u; c < BC; c++) {
                s[c] = softcap(s[c], P.softcap);
            }
        }

        // Online softmax: new maximum, rescale what was accumulated, add this tile.
        var mx = m;
        for (var c = 0u; c < BC; c++) {
            if (visible(kb + c, pq, row_ok)) {
                mx = max(mx, s[c]);
            }
        }
        let alpha = exp(m - mx);
        var ps = 0.0;
        for (var c = 0u; c < BC; c++) {
            var p = 0.0;
            if (visible(kb + c, pq, row_ok)) {
                p = exp(s[c] - mx);
            }
            s[c] = p;
            ps += p;
        }
        l = l * alpha + ps;
        m = mx;
        for (var i = 0u; i < NV; i++) {
            o[i] *= alpha;
        }
        for (var c = 0u; c < BC; c++) {
            let p = vec4<f32>(s[c]);
            for (var i = 0u; i < NV; i++) {
                o[i] = fma(p, vt[c * D4 + t + i * T], o[i]);
            }
        }
        // The next tile overwrites kt and vt.
        workgroupBarrier();
    }

    if (row_ok) {
        for (var i = 0u; i < NV; i++) {
            O[qo + i * T] = o[i] / l;
        }
    }
}
