// Element-wise ops on f32 [len] (activations are [tokens][n], flattened), one invocation per
// element. Exactly one op flag:
//   GEGLU   y = gelu_tanh(a) · b     (a = gate, b = up; Gemma)
//   SWIGLU  y = silu(a) · b          (Llama, Qwen)
//   ADD     y = a + b
//   ADD_BIAS y[r][i] = a[r][i] + b[i]   (b is one row of n)
//   SCALE   y = a · s
//   SOFTCAP y = s · tanh(a / s)     (Gemma 2's final logits; tanh_f32 in softcap.wgsl)
// INPLACE: y is a (a is bound read-write and there is no y binding).
// HALVES (with GEGLU or SWIGLU, and UNARY bindings): gate and up are the two halves of each row
// of a, `[rows][2n]` (a fused gate+up projection), y is `[rows][n]`.
// Bindings: 0 params, 1 a, 2 b (binary ops), then y (unless INPLACE). act_fns.wgsl (silu,
// gelu_tanh) and softcap.wgsl are appended.

struct ActParams {
    len: u32,
    grid_x: u32,
    s: f32,
    n: u32,         // row length (ADD_BIAS)
}

@group(0) @binding(0) var<uniform> P: ActParams;
#if INPLACE
@group(0) @binding(1) var<storage, read_write> A: array<f32>;
#else
@group(0) @binding(1) var<storage, read> A: array<f32>;
#endif
#if UNARY
#if !INPLACE
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
#endif
#else
@group(0) @binding(2) var<storage, read> B: array<f32>;
#if !INPLACE
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#endif
#endif

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * P.grid_x + wg.x) * 64u + li;
    if (i >= P.len) {
        return;
    }
#if HALVES
    let a = A[(i / P.n) * 2u * P.n + i % P.n];
    let up = A[(i / P.n) * 2u * P.n + P.n + i % P.n];
#else
    let a = A[i];
#endif
#if GEGLU
#if !HALVES
    let up = B[i];
#endif
    let v = gelu_tanh(a) * up;
#endif
#if SWIGLU
#if !HALVES
    let up = B[i];
#endif
    let v = silu(a) * up;
#endif
#if ADD
    let v = a + B[i];
#endif
#if ADD_BIAS
    let v = a + B[i % P.n];
#endif
#if SCALE
    let v = a * P.s;
#endif
#if SOFTCAP
    let v = softcap(a, P.s);
#endif
#if INPLACE
    A[i] = v;
#else
    Y[i] = v;
#endif
}
