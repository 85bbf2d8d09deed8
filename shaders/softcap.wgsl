// Soft-capping (Gemma 2): c·tanh(x / c), appended to the element-wise ops and the attention
// kernels. tanh is computed here, not by the driver: WGSL inherits its accuracy from
// sinh/cosh, which is poor near 0 and overflows to NaN for large arguments on some drivers.
//   |t| < 0.55: the odd Taylor series to t^17 (next term < 1.4e-8 relative);
//   otherwise:  (1 − e)/(1 + e), e = exp(−2|t|) ≤ 0.33, so 1 − e loses no bits.
fn tanh_f32(t: f32) -> f32 {
    let a = abs(t);
    if (a < 0.55) {
        let z = t * t;
        let p = -1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0
            + z * (-1382.0 / 155925.0 + z * (21844.0 / 6081075.0 + z * (-929569.0 / 638512875.0
            + z * (6404582.0 / 10854718875.0)))))));
        return t + t * z * p;
    }
    let e = exp(-2.0 * a);
    return sign(t) * (1.0 - e) / (1.0 + e);
}

fn softcap(x: f32, c: f32) -> f32 {
    return c * tanh_f32(x / c);
}
