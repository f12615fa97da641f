//! Deterministic elementary functions and noise for the synthetic generator.
//!
//! `f32::sin`, `exp`, `powf` … call the platform's libm, whose last bit may
//! differ between glibc, musl, macOS and Windows; a differing bit can flip a
//! rounded pixel. These versions use only IEEE-754 `+ − × ÷`, `sqrt`, `floor`
//! and `round` (exactly rounded everywhere) on f64, so a seed gives the same
//! bytes on every platform. Range reduction plus Taylor / atanh series (as in
//! Cody & Waite, "Software Manual for the Elementary Functions", 1980), good
//! to ~1e-15 relative, far below what an 8-bit image can show. Noise is
//! lattice value noise (Perlin 1985 without gradients) over an integer hash
//! (SplitMix64's finaliser), again integer-exact.

use std::f64::consts::{FRAC_PI_2, LN_2};

/// 1/k! for k = 0..=21.
const INV_FACT: [f64; 22] = {
    let mut t = [1.0f64; 22];
    let mut k = 1;
    while k < 22 {
        t[k] = t[k - 1] / k as f64;
        k += 1;
    }
    t
};

/// 1/(2i + 1) for i = 0..15.
const INV_ODD: [f64; 15] = {
    let mut t = [1.0f64; 15];
    let mut i = 0;
    while i < 15 {
        t[i] = 1.0 / (2 * i + 1) as f64;
        i += 1;
    }
    t
};

/// e^x (x clamped to ±700).
pub fn exp(x: f32) -> f32 {
    exp64(x as f64) as f32
}

pub fn exp64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN_2).round();
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^20.
    const LN2_HI: f64 = 6.931_471_803_691_238_16e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = x - k * LN2_HI - k * LN2_LO;
    // Taylor series to r^13 / 13! in Horner form (|r| ≤ 0.347).
    let mut sum = INV_FACT[13];
    for i in (0..13).rev() {
        sum = sum * r + INV_FACT[i];
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// Natural logarithm; `ln(x ≤ 0)` gives −1e30 (callers keep x positive).
pub fn ln64(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return -1e30;
    }
    if x.is_infinite() {
        return x;
    }
    let mut x = x;
    let mut e = 0i64;
    // Normalise subnormals, then split into mantissa m ∈ [1, 2) and exponent.
    if x < f64::MIN_POSITIVE {
        x *= (1u64 << 54) as f64;
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(f), f = (m − 1)/(m + 1), |f| ≤ 0.172.
    let f = (m - 1.0) / (m + 1.0);
    let f2 = f * f;
    // f · Σ f^(2i) / (2i + 1), i = 0..15, Horner form.
    let mut sum = 0.0;
    for i in (0..15).rev() {
        sum = sum * f2 + INV_ODD[i];
    }
    let sum = sum * f;
    e as f64 * LN_2 + 2.0 * sum
}

/// x^y for x > 0 (0 for x ≤ 0).
pub fn pow(x: f32, y: f32) -> f32 {
    if x <= 0.0 {
        return 0.0;
    }
    exp64(y as f64 * ln64(x as f64)) as f32
}

/// (sin x, cos x), x in radians (accurate for |x| < 1e6).
pub fn sin_cos(x: f32) -> (f32, f32) {
    let (s, c) = sin_cos64(x as f64);
    (s as f32, c as f32)
}

pub fn sin_cos64(x: f64) -> (f64, f64) {
    if !x.is_finite() {
        return (0.0, 1.0);
    }
    let k = (x / FRAC_PI_2).round();
    const PIO2_HI: f64 = 1.570_796_326_734_125_6;
    const PIO2_LO: f64 = 6.077_100_506_506_192e-11;
    let r = x - k * PIO2_HI - k * PIO2_LO;
    let r2 = r * r;
    // Taylor series on |r| ≤ π/4 to r^21, Horner form; odd terms for sin,
    // even for cos, alternating signs.
    let mut s = 0.0;
    let mut c = 0.0;
    for i in (0..=10).rev() {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        s = s * r2 + sign * INV_FACT[2 * i + 1];
        c = c * r2 + sign * INV_FACT[2 * i];
    }
    let s = s * r;
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

pub fn cos(x: f32) -> f32 {
    sin_cos(x).1
}

/// Smooth step 0 → 1 between `a` and `b` (either order).
pub fn smoothstep(a: f32, b: f32, x: f32) -> f32 {
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// An integer hash to [0, 1).
pub fn hash01(seed: u64, x: i64, y: i64, z: i64) -> f32 {
    let mut h = seed ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h = mix(h ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    h = mix(h ^ (z as u64).wrapping_mul(0x1656_67B1_9E37_79F9));
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// SplitMix64's output function.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 3-D value noise in [0, 1) with unit lattice spacing, smooth (C1).
pub fn value_noise3(seed: u64, x: f32, y: f32, z: f32) -> f32 {
    let (fx, fy, fz) = (x.floor(), y.floor(), z.floor());
    let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
    let s = |t: f32| t * t * (3.0 - 2.0 * t);
    let (tx, ty, tz) = (s(x - fx), s(y - fy), s(z - fz));
    let mut acc = 0.0;
    for dz in 0..2 {
        let wz = if dz == 0 { 1.0 - tz } else { tz };
        for dy in 0..2 {
            let wy = if dy == 0 { 1.0 - ty } else { ty };
            for dx in 0..2 {
                let wx = if dx == 0 { 1.0 - tx } else { tx };
                acc += wx * wy * wz * hash01(seed, ix + dx, iy + dy, iz + dz);
            }
        }
    }
    acc
}

/// Two-octave value noise in [0, 1) at feature size `scale` (mm).
pub fn fbm3(seed: u64, p: [f32; 3], scale: f32) -> f32 {
    let q = [p[0] / scale, p[1] / scale, p[2] / scale];
    let a = value_noise3(seed, q[0], q[1], q[2]);
    let b = value_noise3(seed ^ 0x5555, 2.03 * q[0] + 17.1, 2.03 * q[1], 2.03 * q[2]);
    (a * 0.67 + b * 0.33).clamp(0.0, 0.999_999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_closely() {
        for i in -400..400 {
            let x = i as f64 * 0.0371;
            assert!((exp64(x) / x.exp() - 1.0).abs() < 1e-13, "exp {x}");
            let (s, c) = sin_cos64(x * 7.0);
            assert!((s - (x * 7.0).sin()).abs() < 1e-13 && (c - (x * 7.0).cos()).abs() < 1e-13, "sincos {x}");
            let y = x.abs() * 11.0 + 1e-9;
            assert!((ln64(y) - y.ln()).abs() < 1e-12 * (1.0 + y.ln().abs()), "ln {y}");
        }
        assert!((pow(2.0, 10.0) - 1024.0).abs() < 1e-3);
        assert!((ln64(1e-310) - 1e-310f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn noise_is_in_range_and_smooth() {
        let mut prev = value_noise3(3, 0.0, 0.5, 0.5);
        for i in 1..1000 {
            let v = value_noise3(3, i as f32 * 0.01, 0.5, 0.5);
            assert!((0.0..1.0).contains(&v));
            assert!((v - prev).abs() < 0.05);
            prev = v;
        }
    }
}
