// The gated-unit activations, appended to act.wgsl and to the fused gate+up matvec kernels
// (matvec_row.wgsl, matvec_wg.wgsl with GLU), so both compute them identically.

// σ(z) without overflow for any finite z: exp only ever sees −|z|, so it lies in (0, 1] and
// underflows to 0 gracefully (WGSL lets implementations assume no overflow or infinities).
fn sigmoid(z: f32) -> f32 {
    let e = exp(-abs(z));
    return select(1.0, e, z < 0.0) / (1.0 + e);
}

// silu(x) = x·σ(x).
fn silu(x: f32) -> f32 {
    return x * sigmoid(x);
}

// gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = x·σ(2·√(2/π)·(x + 0.044715·x³)).
// tanh is never evaluated (tanh as sinh/cosh overflows to NaN for large arguments on some
// drivers). x is clamped to ±9 so x³ cannot overflow: above 9, σ(z(9)) = 1 − 1.5e-29 is 1 in
// f32, so the result is x; below −9 the result is gelu(−9) = −1.34e-28, within 1.4e-28 of the
// true value (which is closer to 0).
fn gelu_tanh(x: f32) -> f32 {
    let c = clamp(x, -9.0, 9.0);
    let z = 1.5957691216057308 * (c + 0.044715 * c * c * c);
    return max(x, -9.0) * sigmoid(z);
}

#if GLU
// The gated unit of the fused gate+up kernels: act(gate) · up, as act.wgsl computes it.
fn glu(gate: f32, up: f32) -> f32 {
#if GELU
    return gelu_tanh(gate) * up;
#else
    return silu(gate) * up;
#endif
}
#endif
