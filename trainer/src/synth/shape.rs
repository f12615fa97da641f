//! Shapes and mass effect shared by the lesion models: an ellipsoid whose
//! radius is perturbed by summed random harmonics (lobulated, irregular
//! margins, as in procedural tumour phantoms such as Prastawa et al.,
//! "Simulation of brain tumors in MR images", Med Image Anal 2009), and a
//! smooth radial displacement field for the mass effect: tissue at distance
//! r from the centre is drawn from r − m·min(1, r/R)·exp(−(r/w)²), which is
//! monotonic for m < R so it never folds.

use super::detmath;
use super::slices::{dot, normalize, norm, scale, sub};
use mriscreen::rng::Rng;

#[derive(Debug, Clone)]
struct Harmonic {
    dir: [f32; 3],
    freq: f32,
    phase: f32,
    amp: f32,
}

/// An ellipsoid (centre, orthonormal axes, radii) with a perturbed radius.
#[derive(Debug, Clone)]
pub struct Blob {
    pub centre: [f32; 3],
    axes: [[f32; 3]; 3],
    radii: [f32; 3],
    harmonics: Vec<Harmonic>,
}

impl Blob {
    /// `elong`: the largest axis ratio; `rough`: total harmonic amplitude;
    /// `freq`: range of harmonic frequencies (lobes per circumference / 2π).
    pub fn random(rng: &mut Rng, centre: [f32; 3], r: f32, elong: f32, rough: f32, freq: (f32, f32), n: usize) -> Blob {
        let axes = random_frame(rng);
        let radii = [r * rng.range(1.0, elong), r, r * rng.range(1.0 / elong, 1.0)];
        let harmonics = (0..n)
            .map(|_| Harmonic {
                dir: random_unit(rng),
                freq: rng.range(freq.0, freq.1),
                phase: rng.range(0.0, std::f32::consts::TAU),
                amp: rough / n as f32 * rng.range(0.4, 1.6),
            })
            .collect();
        Blob { centre, axes, radii, harmonics }
    }

    /// An axis-aligned ellipsoid with a smooth margin.
    pub fn ellipsoid(centre: [f32; 3], radii: [f32; 3]) -> Blob {
        Blob { centre, axes: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], radii, harmonics: Vec::new() }
    }

    /// Largest distance from the centre the blob can reach.
    pub fn reach(&self) -> f32 {
        let amp: f32 = self.harmonics.iter().map(|h| h.amp).sum();
        self.radii.iter().cloned().fold(0.0, f32::max) * (1.0 + amp)
    }

    pub fn mean_radius(&self) -> f32 {
        (self.radii[0] + self.radii[1] + self.radii[2]) / 3.0
    }

    /// Normalised radius: < 1 inside, 1 on the margin.
    pub fn s(&self, p: [f32; 3]) -> f32 {
        let d = sub(p, self.centre);
        let q = [0, 1, 2].map(|k| dot(d, self.axes[k]) / self.radii[k]);
        let rho = norm(q);
        if rho < 1e-6 || self.harmonics.is_empty() {
            return rho;
        }
        let u = scale(q, 1.0 / rho);
        let mut f = 1.0;
        for h in &self.harmonics {
            f += h.amp * detmath::cos(h.freq * dot(u, h.dir) + h.phase);
        }
        rho / f.max(0.3)
    }
}

/// Mass effect around `centre`: push tissue outward by up to `m` mm.
#[derive(Debug, Clone)]
pub struct Push {
    pub centre: [f32; 3],
    pub r: f32,
    pub m: f32,
    pub width: f32,
}

impl Push {
    /// Where the tissue now at `p` came from.
    pub fn source(&self, p: [f32; 3]) -> [f32; 3] {
        let d = sub(p, self.centre);
        let r = norm(d);
        if r < 1e-4 || r > 3.0 * self.width {
            return p;
        }
        let t = r / self.width;
        let shift = self.m * (r / self.r).min(1.0) * detmath::exp(-t * t);
        let k = ((r - shift) / r).max(0.0);
        [0, 1, 2].map(|i| self.centre[i] + d[i] * k)
    }
}

/// A random unit vector (rejection from the cube, so uniform on the sphere).
pub fn random_unit(rng: &mut Rng) -> [f32; 3] {
    loop {
        let v = [rng.range(-1.0, 1.0), rng.range(-1.0, 1.0), rng.range(-1.0, 1.0)];
        let n2 = dot(v, v);
        if n2 > 0.01 && n2 <= 1.0 {
            return scale(v, 1.0 / n2.sqrt());
        }
    }
}

/// A random right-handed orthonormal frame.
pub fn random_frame(rng: &mut Rng) -> [[f32; 3]; 3] {
    let a = random_unit(rng);
    let mut b = random_unit(rng);
    while dot(a, b).abs() > 0.95 {
        b = random_unit(rng);
    }
    let b = normalize(sub(b, scale(a, dot(a, b))));
    let c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
    [a, b, c]
}
