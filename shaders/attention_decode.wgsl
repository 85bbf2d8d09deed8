// Decode attention (one query token, all heads), split-K: workgroup (split, head group, kv head)
// covers keys [kv_lo + split·chunk, +chunk) ∩ [0, pos] and writes, per query head, its partial
// maximum m, sum l and unnormalized output o; attention_reduce.wgsl combines the splits. With
// one split the workgroups write the normalized output itself and the reduce does not run.
//
// Inside a workgroup, a row is (query head, key lane): HG heads × KL key lanes, T lanes per row
// owning interleaved vec4s of q and o as in the prefill kernel. Key lane kl takes keys
// base + c·KL + kl (c < BC) of every step, so the rows of a step read adjacent cache rows; K and
// V come straight from the cache (no reuse to stage for). At the end the KL rows of a head are
// merged in workgroup memory.
//
// Bindings: 0 params, 1 Q [head][D] f32, 2 K cache, 3 V cache,
// 4 partials: o [head][split][D] then (m, l, 0, 0) [head][split], vec4<f32>; with one split,
// the output O [head][D].
// Flags: KV_F16, SUBGROUPS (as in attention_prefill.wgsl); X8 (`fast` precision): with one
// split, the output is also quantized to 8 bits per 32 values (x8_piece.wgsl, appended) into
// bindings 5 and 6, as quantize_x8.wgsl would, for the output projection.

override D: u32;
override T: u32;
override BC: u32;              // keys per row and step, ≤ 32
override D4: u32 = D / 4u;
override NV: u32 = D4 / T;
override BR: u32 = 64u / T;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> PART: array<vec4<f32>>;
#if X8
@group(0) @binding(5) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(6) var<storage, read_write> XS: array<vec4<f32>>;
#endif

#if !SUBGROUPS
var<workgroup> red: array<f32, 64u * BC>;
var<workgroup> sc: array<f32, BR * BC>;
#endif
var<workgroup> mo: array<vec4<f32>, BR * D4>;
var<workgroup> mm: array<f32, BR>;
var<workgroup> ml: array<f32, BR>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let split = wid.x;
    let hg = P.heads_per_wg;
    let kl_n = P.key_lanes;
    let r = li / T;
    let t = li % T;
    let gl = r % hg;
    let kl = r / hg;
    let g = wid.y * hg + gl;
    let row_ok = kl < kl_n && g < P.group;
    let head = wid.z * P.group + min(g, P.group - 1u);

    // Keys [a, b) of this split; causal and window limits are already in kv_lo and b.
    let a = P.kv_lo + split * P.chunk;
    let b = min(a + P.chunk, P.pos0 + 1u);
    let per_step = kl_n * BC;
    var steps = 0u;
    if (b > a) {
        steps = (b - a + per_step - 1u) / per_step;
    }

    let qo = head * D4 + t;
    var q: array<vec4<f32>, 8>;
    var o: array<vec4<f32>, 8>;
    for (var i = 0u; i < NV; i++) {
        q[i] = Q[qo + i * T] * P.scale;
        o[i] = vec4<f32>(0.0);
    }
    var m = NEG;
    var l = 0.0;
    var s: array<f32, 32>;

    let kv0 = wid.z * P.ctx;
    for (var st = 0u; st < steps; st++) {
        let base = a + st * per_step + kl;
        for (var c = 0u; c < BC; c++) {
            let src = (kv0 + min(base + c * kl_n, b - 1u)) * D4 + t;
            var acc = vec4<f32>(0.0);
            for (var i = 0u; i < NV; i++) {
                acc = fma(q[i], load_k(src + i * T), acc);
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
            var acc = 0.0;
            for (var u = 0u; u < T; u++) {
                acc += red[(r * BC + c) * T + u];
            }
            sc[r * BC + c] = acc;
        }
        workgroupBarrier();
        // `red` is rewritten next step after everyone passed the barrier above, `sc` after
        // the next step's first barrier: no third barrier needed.
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

        var mx = m;
        for (var c = 0u; c < BC; c++) {
            if (row_ok && base + c * kl_n < b) {
                mx = max(mx, s[c]);
            }
        }
        let alpha = exp(m - mx);
        var ps = 0.0;
        for (var c = 0u; c < BC; c++) {
            var p = 0.0;
            if (row_ok && base + c * kl_n < b) {
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
            let src = (kv0 + min(base + c * kl_n, b - 1u)) * D4 + t;
            let p = vec4<f32>(s[c]);
            for (var i = 0u; i < NV; i++) {
                o[i] = fma(p, load_v(src + i * T), o[i]);
            }
        }
    }

    // Merge the key lanes of each head.
    mm[r] = m;
    ml[r] = l;
    for (var i = 0u; i < NV; i++) {
        mo[r * D4 + t + i * T] = o[i];
    }
    workgroupBarrier();
    if (kl == 0u && row_ok) {
        var mx = NEG;
        for (var k = 0u; k < kl_n; k++) {
            mx = max(mx, mm[k * hg + gl]);
        }
        var sum = 0.0;
        for (var i = 0u; i < NV; i++) {
            o[i] = vec4<f32>(0.0);
        }
        for (var k = 0u; k < kl_n; k++) {
            let rr = k * hg + gl;
            let f = exp(mm[rr] - mx);
            sum += f * ml[rr];
            for (var i = 0u; i < NV; i++) {
                o[i] = fma(vec4<f32>(f), mo[rr * D4 + t + i * T], o[i]);
            }
        }
        let pb = head * P.n_splits + split;
        if (P.n_splits == 1u) {
            // One split: PART is the output [head][D], normalized here as attention_reduce
            // would (its factor exp(m − M) is 1), and no reduce pass runs.
            for (var i = 0u; i < NV; i++) {
                PART[pb * D4 + t + i * T] = o[i] / sum;
#if X8
                // Row gl of mo is this lane's own and no other row's merge reads it.
                mo[gl * D4 + t + i * T] = o[i] / sum;
#endif
            }
        } else {
            for (var i = 0u; i < NV; i++) {
                PART[pb * D4 + t + i * T] = o[i];
            }
            if (t == 0u) {
                PART[P.n_heads * P.n_splits * D4 + pb] = vec4<f32>(mx, sum, 0.0, 0.0);
            }
        }
    }
#if X8
    // One split: quantize the workgroup's heads, whole 32-value pieces of a head at a time.
    if (P.n_splits == 1u) {
        workgroupBarrier();
        let per_head = D4 / 8u;
        for (var pc = li; pc < hg * per_head; pc += 64u) {
            let gq = pc / per_head;
            let gg = wid.y * hg + gq;
            if (gg < P.group) {
                let j = pc % per_head;
                var v: array<vec4<f32>, 8>;
                for (var i = 0u; i < 8u; i++) {
                    v[i] = mo[gq * D4 + j * 8u + i];
                }
                quantize_piece(v, (wid.z * P.group + gg) * per_head + j);
            }
        }
    }
#endif
}
