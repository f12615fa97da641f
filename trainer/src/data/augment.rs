//! Training augmentation, deterministic from a seed.
//!
//! Works on the image's float luminance (the shared `luminance`, [0, 1]) and
//! returns an `ImageRgb32F` with R = G = B, which then goes through the
//! shared `preprocess` unchanged: augmentation changes the image, never the
//! preprocessing, so the trainer and the page cannot drift apart. The steps
//! follow common MRI classification practice (e.g. torchvision's
//! `RandomAffine`, `RandomHorizontalFlip`, `ColorJitter`), in this order:
//!
//! 1. **Affine** about the image centre: left–right flip with probability
//!    `hflip`, rotation in ±`rotate_deg`, isotropic scale in `scale`,
//!    translation in ±`translate` of the width and height. Inverse mapping
//!    with bilinear sampling; pixels that come from outside the image are
//!    black (the MRI background).
//! 2. **Gamma** `v^γ`, γ log-uniform in [1/`gamma`, `gamma`].
//! 3. **Contrast** about the image mean, factor in 1 ± `contrast`, then
//!    **brightness** offset in ±`brightness`.
//! 4. **Gaussian noise**, σ uniform in [0, `noise`] (Box–Muller).
//! 5. Clip to [0, 1].
//!
//! All random values are drawn from [`Rng`] in a fixed order whatever is
//! enabled, so one seed gives one output. Note that with `Intensity::Robust`
//! preprocessing the percentile window undoes most of a linear brightness or
//! contrast change; gamma and noise survive it.

use image::{DynamicImage, ImageBuffer, Rgb};
use mriscreen::rng::Rng;
use mriscreen::preprocess::{luminance, Plane};
use serde::{Deserialize, Serialize};

/// Augmentation ranges. [`Default`] is the training recipe; [`AugmentConfig::none`] changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Largest rotation either way, in degrees.
    pub rotate_deg: f32,
    /// Smallest and largest scale factor.
    pub scale: [f32; 2],
    /// Largest shift either way, as a fraction of width (x) and height (y).
    pub translate: f32,
    /// Probability of a left–right flip.
    pub hflip: f32,
    /// Largest brightness offset either way, in [0, 1] intensity units.
    pub brightness: f32,
    /// Largest relative contrast change either way.
    pub contrast: f32,
    /// Largest gamma (≥ 1); the exponent is log-uniform in [1/gamma, gamma].
    pub gamma: f32,
    /// Largest standard deviation of the additive Gaussian noise.
    pub noise: f32,
}

impl Default for AugmentConfig {
    /// ±15°, scale 0.9–1.1, ±8 % shift, flip p 0.5, brightness ±0.1,
    /// contrast ±10 %, gamma 1/1.2–1.2, noise σ ≤ 0.02.
    fn default() -> Self {
        AugmentConfig {
            rotate_deg: 15.0,
            scale: [0.9, 1.1],
            translate: 0.08,
            hflip: 0.5,
            brightness: 0.1,
            contrast: 0.1,
            gamma: 1.2,
            noise: 0.02,
        }
    }
}

impl AugmentConfig {
    /// Changes nothing (the output has the input's luminance).
    #[cfg(test)]
    pub fn none() -> Self {
        AugmentConfig {
            rotate_deg: 0.0,
            scale: [1.0, 1.0],
            translate: 0.0,
            hflip: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            gamma: 1.0,
            noise: 0.0,
        }
    }
}

/// The random values of one augmentation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Draw {
    flip: bool,
    angle: f32,
    scale: f32,
    shift: [f32; 2],
    gamma: f32,
    contrast: f32,
    brightness: f32,
    noise: f32,
}

impl Draw {
    /// Always draws eight values, in this order.
    fn new(cfg: &AugmentConfig, rng: &mut Rng) -> Self {
        let sym = |rng: &mut Rng, a: f32| rng.range(-a, a);
        let flip = rng.uniform() < cfg.hflip;
        let angle = sym(rng, cfg.rotate_deg).to_radians();
        let scale = rng.range(cfg.scale[0], cfg.scale[1]);
        let shift = [sym(rng, cfg.translate), sym(rng, cfg.translate)];
        let g = cfg.gamma.max(1.0).ln();
        let gamma = sym(rng, g).exp();
        let contrast = 1.0 + sym(rng, cfg.contrast);
        let brightness = sym(rng, cfg.brightness);
        let noise = rng.range(0.0, cfg.noise);
        Draw { flip, angle, scale, shift, gamma, contrast, brightness, noise }
    }
}

/// Augments `image` (see the module docs); the result goes through the
/// shared `preprocess` like any decoded image.
pub fn augment(image: &DynamicImage, cfg: &AugmentConfig, rng: &mut Rng) -> DynamicImage {
    let d = Draw::new(cfg, rng);
    let mut plane = luminance(image);
    if d.flip || d.angle != 0.0 || d.scale != 1.0 || d.shift != [0.0, 0.0] {
        plane = affine(&plane, &d);
    }
    if d.gamma != 1.0 {
        plane.data.iter_mut().for_each(|v| *v = v.max(0.0).powf(d.gamma));
    }
    if d.contrast != 1.0 || d.brightness != 0.0 {
        let mean = plane.data.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.data.len().max(1) as f64;
        let mean = mean as f32;
        plane.data.iter_mut().for_each(|v| *v = (*v - mean) * d.contrast + mean + d.brightness);
    }
    if d.noise > 0.0 {
        add_noise(&mut plane.data, d.noise, rng);
    }
    plane.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    to_image(plane)
}

/// Flip, rotation, scale and shift about the centre, by inverse mapping.
fn affine(src: &Plane, d: &Draw) -> Plane {
    let (w, h) = (src.width as f32, src.height as f32);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (tx, ty) = (d.shift[0] * w, d.shift[1] * h);
    let (sin, cos) = d.angle.sin_cos();
    let flip = if d.flip { -1.0 } else { 1.0 };
    let mut out = Plane::new(src.width, src.height);
    for y in 0..src.height {
        for x in 0..src.width {
            // Output pixel centre relative to the centre, minus the shift.
            let (u, v) = (x as f32 + 0.5 - cx - tx, y as f32 + 0.5 - cy - ty);
            // Undo the scale and rotation (R(−θ)), then the flip.
            let (ru, rv) = ((cos * u + sin * v) / d.scale, (-sin * u + cos * v) / d.scale);
            // Back to pixel-index coordinates of the source.
            let (sx, sy) = (flip * ru + cx - 0.5, rv + cy - 0.5);
            out.data[y * src.width + x] = bilinear(src, sx, sy);
        }
    }
    out
}

/// Bilinear sample at (x, y) in pixel-index coordinates; black outside.
fn bilinear(p: &Plane, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= p.width as f32 || yi >= p.height as f32 {
            0.0
        } else {
            p.data[yi as usize * p.width + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + if fx > 0.0 { at(x0 + 1.0, y0) * fx } else { 0.0 };
    if fy == 0.0 {
        return top;
    }
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + if fx > 0.0 { at(x0 + 1.0, y0 + 1.0) * fx } else { 0.0 };
    top * (1.0 - fy) + bottom * fy
}

/// Adds N(0, σ²) noise, two samples per Box–Muller draw.
fn add_noise(data: &mut [f32], sigma: f32, rng: &mut Rng) {
    for pair in data.chunks_mut(2) {
        let u1 = 1.0 - rng.uniform(); // (0, 1]: ln is finite
        let u2 = rng.uniform();
        let r = (-2.0 * u1.ln()).sqrt() * sigma;
        let t = std::f32::consts::TAU * u2;
        pair[0] += r * t.cos();
        if let Some(second) = pair.get_mut(1) {
            *second += r * t.sin();
        }
    }
}

/// A grey plane as an `ImageRgb32F` with R = G = B.
fn to_image(plane: Plane) -> DynamicImage {
    let raw: Vec<f32> = plane.data.iter().flat_map(|&v| [v, v, v]).collect();
    match ImageBuffer::<Rgb<f32>, _>::from_raw(plane.width as u32, plane.height as u32, raw) {
        Some(buf) => DynamicImage::ImageRgb32F(buf),
        // The buffer has exactly 3·w·h values, so this cannot happen.
        None => DynamicImage::new_rgb32f(plane.width as u32, plane.height as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};
    use mriscreen::preprocess::{preprocess, InputSpec, Intensity};

    fn scan() -> DynamicImage {
        GrayImage::from_fn(40, 30, |x, y| Luma([((x * 7 + y * 11) % 200 + 20) as u8])).into()
    }

    fn close(a: &Plane, b: &Plane, tol: f32) -> bool {
        a.width == b.width && a.height == b.height && a.data.iter().zip(&b.data).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn identity_config_returns_the_same_image() {
        let img = scan();
        let out = augment(&img, &AugmentConfig::none(), &mut Rng::new(1));
        assert!(close(&luminance(&out), &luminance(&img), 1e-6));
        // Identity affine, taken explicitly, is exact too (sampling at pixel centres).
        let d = Draw { flip: false, angle: 0.0, scale: 1.0, shift: [0.0; 2], gamma: 1.0, contrast: 1.0, brightness: 0.0, noise: 0.0 };
        assert!(close(&affine(&luminance(&img), &d), &luminance(&img), 0.0));
    }

    #[test]
    fn flip_is_a_flip() {
        let img = scan();
        let cfg = AugmentConfig { hflip: 1.0, ..AugmentConfig::none() };
        let (a, b) = (luminance(&augment(&img, &cfg, &mut Rng::new(5))), luminance(&img));
        for y in 0..b.height {
            for x in 0..b.width {
                let want = b.data[y * b.width + (b.width - 1 - x)];
                assert!((a.data[y * a.width + x] - want).abs() <= 1e-6, "({x}, {y})");
            }
        }
    }

    #[test]
    fn same_seed_same_output_and_other_seeds_differ() {
        let img = scan();
        let cfg = AugmentConfig::default();
        let a = augment(&img, &cfg, &mut Rng::new(11));
        let b = augment(&img, &cfg, &mut Rng::new(11));
        let c = augment(&img, &cfg, &mut Rng::new(12));
        assert_eq!(luminance(&a), luminance(&b));
        assert_ne!(luminance(&a), luminance(&c));
    }

    #[test]
    fn rotation_keeps_the_centre_and_blackens_the_outside() {
        // A white disc in a black square: after rotation/scale/shift the
        // corners (outside the source after the shift) stay black-ish and
        // values stay in [0, 1].
        let img: DynamicImage = GrayImage::from_fn(64, 64, |x, y| {
            let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
            Luma([if dx * dx + dy * dy < 400.0 { 255 } else { 0 }])
        })
        .into();
        let cfg = AugmentConfig { brightness: 0.0, contrast: 0.0, gamma: 1.0, noise: 0.0, ..AugmentConfig::default() };
        for seed in 0..8 {
            let out = luminance(&augment(&img, &cfg, &mut Rng::new(seed)));
            assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(out.data[0] < 1e-6 && out.data[63] < 1e-6, "corners stay black");
            // The disc (radius 20, shift ≤ 5.2 px, scale ≥ 0.9) still covers the centre.
            assert!(out.data[32 * 64 + 32] > 0.99, "seed {seed}");
        }
    }

    #[test]
    fn output_goes_through_the_shared_preprocess() {
        let spec = InputSpec { width: 24, height: 24, intensity: Intensity::Robust, ..InputSpec::default() };
        let out = augment(&scan(), &AugmentConfig::default(), &mut Rng::new(3));
        let t = preprocess(&out, &spec);
        assert_eq!(t.len(), spec.len());
        assert!(t.iter().all(|v| v.is_finite()));
    }
}
