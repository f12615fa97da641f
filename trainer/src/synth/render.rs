//! Renders one synthetic post-contrast T1 slice: samples the anatomy through
//! the lesion's mass effect, adds the normal enhancing structures and the
//! lesion, then the acquisition: a tissue-contrast curve, a smooth
//! multiplicative bias field (as in Sled et al.'s N3 model, IEEE TMI 1998),
//! Rician noise (the magnitude of complex Gaussian noise, Gudbjartsson &
//! Patz, MRM 1995) that stays off the air, and a display window and gamma.
//! Intensities are in white-matter units until the final 8-bit window.

use super::anatomy::Anatomy;
use super::detmath::{self, smoothstep};
use super::distractors::Distractors;
use super::lesions::Lesion;
use super::slices::View;
use mriscreen::rng::Rng;

/// Per-image acquisition and display settings.
#[derive(Debug, Clone)]
pub struct Look {
    /// Tissue contrast: intensities ≤ 1 go through x^gamma (CSF/GM/WM spread).
    pub tissue_gamma: f32,
    /// Slope above white matter (fat, enhancement).
    pub bright_slope: f32,
    /// Bias field: exp of a quadratic in image coordinates.
    pub bias: [f32; 5],
    /// Noise standard deviation (white matter = 1).
    pub sigma: f32,
    /// Display window: this intensity maps to 255; then display gamma.
    pub white: f32,
    pub gamma: f32,
}

impl Look {
    pub fn random(difficulty: f32, rng: &mut Rng) -> Look {
        let b = 0.22;
        Look {
            tissue_gamma: rng.range(0.75, 1.45),
            bright_slope: rng.range(0.65, 1.1),
            bias: [rng.range(-b, b), rng.range(-b, b), rng.range(-b, b) * 0.6, rng.range(-b, b) * 0.6, rng.range(-b, b) * 0.6],
            sigma: rng.range(0.008, 0.04) * detmath::pow(difficulty, 0.3),
            white: rng.range(1.35, 1.9),
            gamma: rng.range(0.85, 1.2),
        }
    }

    fn contrast(&self, v: f32) -> f32 {
        if v <= 1.0 {
            detmath::pow(v.max(0.0), self.tissue_gamma)
        } else {
            1.0 + (v - 1.0) * self.bright_slope
        }
    }
}

/// The 8-bit greyscale image (row-major, `view.size`²).
pub fn render(anat: &Anatomy, view: &View, lesion: Option<&Lesion>, distr: &Distractors, look: &Look, rng: &mut Rng) -> Vec<u8> {
    let n = view.size;
    let shell_seed = rng.next_u64();
    let mut img = vec![0f32; n * n];
    let mut sulcal = vec![0f32; n * n];
    let mut head = vec![0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let p = view.world(x as f32, y as f32);
            let q = lesion.map_or(p, |l| l.source(p, anat));
            let sd = anat.sd_at(q);
            let v = anat.intensity(q, sd, shell_seed);
            let v = distr.shade(anat, q, sd, v);
            let j = y * n + x;
            img[j] = v;
            sulcal[j] = if sd > 0.0 {
                1.0 - smoothstep(anat.csf, anat.gm, v)
            } else {
                1.0 - smoothstep(1.0, 3.0, -sd)
            };
            head[j] = anat.head.sample(q);
        }
    }
    distr.draw_vessels(&mut img, &sulcal, n);
    if let Some(l) = lesion {
        for y in 0..n {
            for x in 0..n {
                let p = view.world(x as f32, y as f32);
                let j = y * n + x;
                img[j] = l.shade(p, img[j], anat);
            }
        }
    }

    // Noise on a grid of ~0.9 mm cells (scanner resolution), interpolated.
    let cell = (0.9 / view.mm_per_px).max(1.0);
    let gn = (n as f32 / cell).ceil() as usize + 2;
    let mut gauss = || {
        // Irwin–Hall(4), rescaled to unit variance: Gaussian enough, and exact.
        (rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0) * 1.732_050_8
    };
    let noise: Vec<[f32; 2]> = (0..gn * gn).map(|_| [gauss(), gauss()]).collect();
    let inv = 2.0 / n as f32;
    let mut out = vec![0u8; n * n];
    for y in 0..n {
        for x in 0..n {
            let j = y * n + x;
            let (u, w) = (x as f32 * inv - 1.0, y as f32 * inv - 1.0);
            let b = &look.bias;
            let bias = detmath::exp(b[0] * u + b[1] * w + b[2] * u * w + b[3] * (u * u - 0.33) + b[4] * (w * w - 0.33));
            let v = look.contrast(img[j]) * bias;
            let (gx, gy) = (x as f32 / cell, y as f32 / cell);
            let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
            let (tx, ty) = (gx - ix as f32, gy - iy as f32);
            let at = |i: usize, k: usize| noise[(iy + k).min(gn - 1) * gn + (ix + i).min(gn - 1)];
            let mut nz = [0f32; 2];
            for c in 0..2 {
                let top = at(0, 0)[c] * (1.0 - tx) + at(1, 0)[c] * tx;
                let bot = at(0, 1)[c] * (1.0 - tx) + at(1, 1)[c] * tx;
                // Bilinear interpolation shrinks the variance: compensate ~1.5×.
                nz[c] = (top * (1.0 - ty) + bot * ty) * 1.5;
            }
            let s = look.sigma * head[j].clamp(0.0, 1.0);
            let re = v + s * nz[0];
            let im = s * nz[1];
            let mag = (re * re + im * im).sqrt();
            let g = detmath::pow((mag / look.white).clamp(0.0, 1.0), look.gamma);
            out[j] = (g * 255.0).round() as u8;
        }
    }
    out
}
