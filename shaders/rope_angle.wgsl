// RoPE's sine and cosine for one pair at one position, appended to rope.wgsl and qk_rope.wgsl.
// The angle is in turns without losing the position's bits: the host splits the pair's turns
// per position into hi (7 significant bits, so pos·hi is exact in f32 for pos < 2^17) + lo;
// only the fraction of pos·hi matters. sin and cos come from polynomials on [−π/4, π/4] after
// an exact quadrant reduction. Returns (m·sin θ, m·cos θ).

const HALF_PI: f32 = 1.5707963267948966;

// (sin a, cos a) for |a| <= π/4: Taylor polynomials to a^9 and a^10 (truncation < 2e-9).
fn sin_cos_small(a: f32) -> vec2<f32> {
    let z = a * a;
    let s = a + a * z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (1.0 / 362880.0))));
    let c = 1.0 + z * (-0.5 + z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (-1.0 / 3628800.0)))));
    return vec2<f32>(s, c);
}

fn rope_sin_cos(pos: f32, hi: f32, lo: f32, m: f32) -> vec2<f32> {
    // Angle in turns: fract(pos·hi) is exact, pos·lo is small.
    let v = 4.0 * (fract(pos * hi) + pos * lo);   // quarter turns
    let q = round(v);
    let sc = sin_cos_small((v - q) * HALF_PI);   // v − q is exact, in [−1/2, 1/2]
    var sn: f32;
    var cs: f32;
    switch (i32(q) & 3) {
        case 0: {
            sn = sc.x;
            cs = sc.y;
        }
        case 1: {
            sn = sc.y;
            cs = -sc.x;
        }
        case 2: {
            sn = -sc.x;
            cs = -sc.y;
        }
        default: {
            sn = -sc.y;
            cs = sc.x;
        }
    }
    return vec2<f32>(sn * m, cs * m);
}
