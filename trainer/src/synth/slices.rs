//! Where each synthetic image cuts the head, and how it is framed.
//!
//! Planes follow the radiological display convention (ACR–AAPM–SIIM): axial
//! seen from the feet (anterior up, patient's right on the image left),
//! coronal seen from the front (superior up, patient's right on the left),
//! sagittal with anterior on the left. The mix of planes, ~60 % axial and
//! 20 % each coronal and sagittal, matches the public Kaggle sets.
//!
//! Levels come in two pools: *sellar* (the skull-base axial levels, the
//! coronal planes through the sella and the midline sagittal planes, all
//! drawn from the same offsets a pituitary tumour would need to be cut) and
//! *general* (levels with at least 30 % of the largest brain section). Every
//! class draws from the same sampler; pituitary uses the sellar pool only,
//! notumor at rate 1/2, glioma and meningioma at 1/4, so that a slice's level
//! says nothing about "notumor": P(notumor | sellar) = P(notumor | general)
//! = 1/4 with equal class counts (the arithmetic is in README.md).

use super::anatomy::Anatomy;
use super::detmath;
use mriscreen::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Axial,
    Coronal,
    Sagittal,
}

impl Orientation {
    pub fn name(self) -> &'static str {
        match self {
            Orientation::Axial => "axial",
            Orientation::Coronal => "coronal",
            Orientation::Sagittal => "sagittal",
        }
    }
    /// The world axis the plane is perpendicular to.
    pub fn axis(self) -> usize {
        match self {
            Orientation::Sagittal => 0,
            Orientation::Coronal => 1,
            Orientation::Axial => 2,
        }
    }
}

/// A sellar level also fixes where a pituitary tumour of radius `r` would
/// sit (`centre`), so that the pituitary class and the others share it.
#[derive(Debug, Clone, Copy)]
pub struct Sellar {
    pub centre: [f32; 3],
    pub r: f32,
}

/// A cut through the head: a point, two in-plane unit axes (image right and
/// image down) and the normal.
#[derive(Debug, Clone)]
pub struct Plane {
    pub orientation: Orientation,
    /// World coordinate along the plane's axis, before tilt (mm).
    pub level: f32,
    pub sellar: Option<Sellar>,
    pub origin: [f32; 3],
    pub eu: [f32; 3],
    pub ev: [f32; 3],
    pub normal: [f32; 3],
}

/// Image pixel → world: `origin + (x − c)·du + (y − c)·dv`, c = size / 2.
#[derive(Debug, Clone)]
pub struct View {
    pub size: usize,
    pub origin: [f32; 3],
    pub du: [f32; 3],
    pub dv: [f32; 3],
    pub mm_per_px: f32,
}

impl View {
    pub fn world(&self, x: f32, y: f32) -> [f32; 3] {
        let c = self.size as f32 * 0.5;
        let (a, b) = (x + 0.5 - c, y + 0.5 - c);
        [0, 1, 2].map(|k| self.origin[k] + a * self.du[k] + b * self.dv[k])
    }
}

/// Pituitary tumour radius (mm) at `difficulty`: micro- to macroadenoma,
/// skewed small (shared by all classes through [`sellar_level`]).
pub fn pituitary_radius(rng: &mut Rng, size_scale: f32) -> f32 {
    let u = rng.uniform();
    (4.0 + 9.0 * u * u.sqrt()) * size_scale
}

pub fn choose_plane(anat: &Anatomy, sellar_rate: f32, size_scale: f32, rng: &mut Rng) -> Plane {
    let o = match rng.uniform() {
        u if u < 0.6 => Orientation::Axial,
        u if u < 0.8 => Orientation::Coronal,
        _ => Orientation::Sagittal,
    };
    let axis = o.axis();
    let (level, sellar) = if rng.uniform() < sellar_rate {
        let r = pituitary_radius(rng, size_scale);
        let jitter = [rng.range(-1.5, 1.5), rng.range(-2.0, 2.0), rng.range(-2.0, 2.0)];
        let centre = [0, 1, 2].map(|k| anat.sella[k] + jitter[k]);
        // The tumour's vertical extent is larger (suprasellar growth).
        let reach = if axis == 2 { 0.6 * r + 0.4 * (r - 7.0).max(0.0) } else { 0.6 * r };
        (centre[axis] + rng.range(-0.6 * r, reach), Some(Sellar { centre, r }))
    } else {
        (general_level(anat, o, rng), None)
    };
    let (eu, ev) = match o {
        Orientation::Axial => ([-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]),
        Orientation::Coronal => ([-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]),
        Orientation::Sagittal => ([0.0, -1.0, 0.0], [0.0, 0.0, -1.0]),
    };
    let mut n = [0.0f32; 3];
    n[axis] = 1.0;
    // Oblique acquisitions: tilt the normal by up to ~5°.
    let (ta, tb) = (rng.range(-0.09, 0.09), rng.range(-0.09, 0.09));
    let n = normalize(add(n, add(scale(eu, ta), scale(ev, tb))));
    let eu = normalize(sub(eu, scale(n, dot(eu, n))));
    let ev = normalize(sub(sub(ev, scale(n, dot(ev, n))), scale(eu, dot(ev, eu))));
    let mut origin = anat.centroid;
    origin[axis] = level;
    Plane { orientation: o, level, sellar, origin, eu, ev, normal: n }
}

/// A level with at least 30 % of the largest brain section; axial levels
/// stay above the skull base (10 mm over the sella), sagittal ones off the
/// midline (≥ 10 mm).
fn general_level(anat: &Anatomy, o: Orientation, rng: &mut Rng) -> f32 {
    let axis = o.axis();
    let max = anat.max_area(axis);
    let (first, areas) = &anat.area[axis];
    let ok: Vec<f32> = (0..areas.len())
        .map(|k| (*first + k as i32) as f32)
        .filter(|&l| anat.area_at(axis, l) >= 0.3 * max)
        .filter(|&l| match o {
            Orientation::Axial => l >= anat.sella[2] + 10.0,
            Orientation::Sagittal => (l - anat.mid_x).abs() >= 10.0,
            Orientation::Coronal => true,
        })
        .collect();
    if ok.is_empty() {
        return anat.centroid[axis];
    }
    let k = ((rng.uniform() * ok.len() as f32) as usize).min(ok.len() - 1);
    ok[k] + rng.range(-0.5, 0.5)
}

/// Frames the head in a square image: find the head's extent in the plane,
/// then apply a random similarity transform (rotation ±15°, scale
/// 0.85–1.15, shift ±4 %).
pub fn frame(anat: &Anatomy, plane: &Plane, size: usize, rng: &mut Rng) -> View {
    let (mut lo_a, mut hi_a, mut lo_b, mut hi_b) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    let step = 3.0;
    let mut a = -140.0;
    while a <= 140.0 {
        let mut b = -140.0;
        while b <= 140.0 {
            let p = at(plane, a, b);
            if anat.head.sample(p) > 0.5 {
                lo_a = lo_a.min(a);
                hi_a = hi_a.max(a);
                lo_b = lo_b.min(b);
                hi_b = hi_b.max(b);
            }
            b += step;
        }
        a += step;
    }
    if lo_a > hi_a {
        (lo_a, hi_a, lo_b, hi_b) = (-90.0, 90.0, -90.0, 90.0);
    }
    let extent = (hi_a - lo_a).max(hi_b - lo_b) + step;
    let zoom = rng.range(0.85, 1.15);
    let margin = rng.range(1.04, 1.2);
    let mm_per_px = extent * margin / (zoom * size as f32);
    let (s, c) = detmath::sin_cos(rng.range(-15.0, 15.0).to_radians());
    let shift = [rng.range(-0.04, 0.04) * extent, rng.range(-0.04, 0.04) * extent];
    let centre = at(plane, 0.5 * (lo_a + hi_a) + shift[0], 0.5 * (lo_b + hi_b) + shift[1]);
    let du = add(scale(plane.eu, c * mm_per_px), scale(plane.ev, s * mm_per_px));
    let dv = add(scale(plane.eu, -s * mm_per_px), scale(plane.ev, c * mm_per_px));
    View { size, origin: centre, du, dv, mm_per_px }
}

/// The world point at in-plane coordinates (a, b) mm.
pub fn at(plane: &Plane, a: f32, b: f32) -> [f32; 3] {
    add(plane.origin, add(scale(plane.eu, a), scale(plane.ev, b)))
}

pub fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub fn norm(a: [f32; 3]) -> f32 {
    dot(a, a).sqrt()
}
pub fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = norm(a);
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}
