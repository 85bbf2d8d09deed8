// Index and value of the largest of n f32, in two passes over 64-invocation workgroups.
//   pass 1 (default): workgroup g strides over x and writes its best (key, index) to
//                     out[2 + 2g], out[3 + 2g];
//   FINAL:            one workgroup reduces the `groups` partials and writes out[0] = index,
//                     out[1] = the bits of x[index].
// Order: values compare as floats (−0 == +0); ties go to the lowest index; NaN never wins. If
// every value is NaN the result is index 0xffffffff and a NaN value.
// Comparisons use an order-preserving integer key of the bits, so nothing depends on how a
// driver treats NaN or infinities in float compares (WGSL lets it assume there are none).
// SUBGROUPS (T2): subgroupMax / subgroupMin instead of the first levels of the tree.
// MASKED (structured output): only indices whose bit is set in MASK take part (bit j % 32 of
// word j / 32); if none does, the result is index 0xffffffff.
// Bindings: 0 params, 1 x, 2 out, 3 mask (MASKED).

struct ArgmaxParams {
    n: u32,
    groups: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: ArgmaxParams;
@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<u32>;
#if MASKED
@group(0) @binding(3) var<storage, read> MASK: array<u32>;
#endif

const WG: u32 = 64u;
const NONE: u32 = 0xffffffffu;

var<workgroup> rk: array<u32, 64>;
var<workgroup> ri: array<u32, 64>;

// The key of a non-NaN f32: unsigned order of keys is float order; −0 gets +0's key. Key 0
// belongs to a NaN, so (0, NONE) loses to every number.
fn key_of(bits: u32) -> u32 {
    var b = bits;
    if (b == 0x80000000u) {
        b = 0u;
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn is_nan(bits: u32) -> bool {
    return (bits & 0x7fffffffu) > 0x7f800000u;
}

// Whether (k, i) goes before (bk, bi).
fn better(k: u32, i: u32, bk: u32, bi: u32) -> bool {
    return k > bk || (k == bk && i < bi);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
#if SUBGROUPS
    @builtin(subgroup_invocation_id) sl: u32,
    @builtin(subgroup_size) ss: u32,
#endif
) {
    var bk = 0u;
    var bi = NONE;
#if FINAL
    for (var g = li; g < P.groups; g += WG) {
        let k = OUT[2u + 2u * g];
        let i = OUT[3u + 2u * g];
        if (better(k, i, bk, bi)) {
            bk = k;
            bi = i;
        }
    }
#else
    // Each invocation visits increasing indices, so keeping the first of equals keeps the lowest.
    for (var j = wg.x * WG + li; j < P.n; j += P.groups * WG) {
        let b = X[j];
#if MASKED
        let allowed = ((MASK[j >> 5u] >> (j & 31u)) & 1u) != 0u;
#else
        let allowed = true;
#endif
        if (allowed && !is_nan(b)) {
            let k = key_of(b);
            if (k > bk) {
                bk = k;
                bi = j;
            }
        }
    }
#endif
#if SUBGROUPS
    // Subgroups are consecutive ranges of local_invocation_index (as matvec_wg assumes).
    let mk = subgroupMax(bk);
    let mi = subgroupMin(select(NONE, bi, bk == mk));
    if (sl == 0u) {
        rk[li / ss] = mk;
        ri[li / ss] = mi;
    }
    workgroupBarrier();
    if (li == 0u) {
        bk = rk[0];
        bi = ri[0];
        for (var s = 1u; s < (WG + ss - 1u) / ss; s++) {
            if (better(rk[s], ri[s], bk, bi)) {
                bk = rk[s];
                bi = ri[s];
            }
        }
    }
#else
    rk[li] = bk;
    ri[li] = bi;
    workgroupBarrier();
    for (var o = WG / 2u; o > 0u; o >>= 1u) {
        if (li < o && better(rk[li + o], ri[li + o], rk[li], ri[li])) {
            rk[li] = rk[li + o];
            ri[li] = ri[li + o];
        }
        workgroupBarrier();
    }
    bk = rk[0];
    bi = ri[0];
#endif
    if (li != 0u) {
        return;
    }
#if FINAL
    OUT[0] = bi;
    if (bi == NONE) {
        OUT[1] = 0x7fc00000u;
    } else {
        OUT[1] = X[bi];
    }
#else
    OUT[2u + 2u * wg.x] = bk;
    OUT[3u + 2u * wg.x] = bi;
#endif
}
