//! Normal enhancing structures of a post-contrast T1 that a screening model
//! must not mistake for tumour (Osborn's Brain ch. 1; Kanal et al. on normal
//! enhancement): the dura and the falx with the superior sagittal sinus,
//! the normal pituitary gland and the cavernous sinuses around it (with the
//! carotid flow voids), choroid plexus in the ventricles, and cortical and
//! sulcal vessels (bright dots and short curving lines in the sulci). They
//! appear in every class; their number and brightness grow with
//! `--difficulty`.

use super::anatomy::Anatomy;
use super::detmath::{self, fbm3, smoothstep};
use super::shape::Blob;
use super::slices::{at, sub, Plane, View};
use mriscreen::rng::Rng;

pub struct Distractors {
    dura: f32,
    falx: f32,
    gland: Blob,
    gland_enh: f32,
    /// The parasellar band: both cavernous sinuses and the gland between.
    cavernous: Blob,
    carotid: [Blob; 2],
    cav_enh: f32,
    plexus: Vec<(Blob, f32)>,
    /// Vessels in image pixels: polyline, half-width (px), brightness.
    vessels: Vec<(Vec<[f32; 2]>, f32, f32)>,
    seed: u64,
}

impl Distractors {
    pub fn new(anat: &Anatomy, plane: &Plane, view: &View, difficulty: f32, rng: &mut Rng) -> Distractors {
        let k = difficulty;
        let ks = detmath::pow(difficulty, 0.5);
        let s = anat.sella;
        let side = |sgn: f32, dx: f32| [s[0] + sgn * dx, s[1], s[2]];
        let gland = Blob::ellipsoid(s, [rng.range(4.0, 6.0), rng.range(3.5, 5.0), rng.range(2.5, 4.5) * ks.min(1.4)]);
        let cavernous = Blob::ellipsoid(s, [rng.range(10.0, 14.0), rng.range(5.0, 7.0), rng.range(3.5, 5.0)]);
        let cav_dx = rng.range(7.0, 9.0);
        let car_r = rng.range(1.2, 2.0);
        let carotid = [Blob::ellipsoid(side(-1.0, cav_dx), [car_r, car_r, 5.0]), Blob::ellipsoid(side(1.0, cav_dx), [car_r, car_r, 5.0])];

        // Choroid plexus: lumps in deep CSF (the ventricles) near the plane.
        let mut plexus = Vec::new();
        let want = (rng.range(0.0, 2.5) * k).round() as usize;
        let csf_max = 0.5 * (anat.csf + anat.gm);
        for _ in 0..300 {
            if plexus.len() >= want {
                break;
            }
            let p = at(plane, rng.range(-70.0, 70.0), rng.range(-70.0, 70.0));
            if anat.sd_at(p) > 12.0 && anat.t1.sample(p) < csf_max {
                let (r, e, rough) = (rng.range(1.5, 3.5), rng.range(0.0, 0.45) * ks, rng.range(0.1, 0.3));
                plexus.push((Blob::random(rng, p, r, 1.6, rough, (2.0, 5.0), 3), e));
            }
        }

        // Vessels: random curving walks and dots starting in sulci or on the surface.
        let mut vessels = Vec::new();
        let n_lines = (rng.range(2.0, 9.0) * k).round() as usize;
        let n_dots = (rng.range(3.0, 12.0) * k).round() as usize;
        let mm = view.mm_per_px;
        for i in 0..300 {
            if vessels.len() >= n_lines + n_dots {
                break;
            }
            let (x, y) = (rng.range(0.0, view.size as f32), rng.range(0.0, view.size as f32));
            let p = view.world(x, y);
            let sd = anat.sd_at(p);
            let sulcal = sd > 0.0 && anat.t1.sample(p) < anat.gm;
            if !(sulcal || (-2.0..3.0).contains(&sd)) {
                continue;
            }
            let half = rng.range(0.3, 0.8) / mm;
            let bright = rng.range(0.05, 0.4) * ks;
            let mut pts = vec![[x, y]];
            if i % 2 == 0 && vessels.len() < n_lines {
                let len = rng.range(4.0, 18.0) / mm;
                let mut heading = rng.range(0.0, std::f32::consts::TAU);
                let step = 0.7f32.max(half);
                let mut walked = 0.0;
                let (mut cx, mut cy) = (x, y);
                while walked < len {
                    heading += rng.range(-0.35, 0.35) * step * mm;
                    let (sn, cs) = detmath::sin_cos(heading);
                    cx += cs * step;
                    cy += sn * step;
                    walked += step;
                    pts.push([cx, cy]);
                }
            }
            vessels.push((pts, half, bright));
        }
        Distractors {
            dura: rng.range(0.0, 0.35) * ks,
            falx: rng.range(0.03, 0.3) * ks,
            gland,
            gland_enh: rng.range(0.05, 0.35) * ks,
            cavernous,
            carotid,
            cav_enh: rng.range(0.1, 0.45) * ks,
            plexus,
            vessels,
            seed: rng.next_u64(),
        }
    }

    /// Adds the 3-D enhancing structures at `p` (signed distance `sd`).
    pub fn shade(&self, anat: &Anatomy, p: [f32; 3], sd: f32, v: f32) -> f32 {
        let mut v = v;
        // Dura: a thin, patchy bright band just outside the brain.
        if (-3.5..0.5).contains(&sd) {
            let band = smoothstep(-3.5, -2.2, sd) * (1.0 - smoothstep(-0.8, 0.3, sd));
            v += self.dura * band * (0.5 + fbm3(self.seed, p, 6.0));
        }
        // Falx (a line at the midline above the corpus callosum) and the
        // superior sagittal sinus (a bright triangle at its top).
        let dx = (p[0] - anat.mid_x).abs();
        if dx < 5.0 && p[2] > anat.centroid[2] - 5.0 && sd > -7.0 {
            let csf = 1.0 - smoothstep(anat.csf, anat.gm, v);
            let inside = smoothstep(0.0, 2.0, sd);
            let patchy = 0.3 + 1.2 * fbm3(self.seed ^ 7, p, 8.0);
            v += self.falx * (1.0 - smoothstep(0.3, 0.9, dx)) * csf * inside * patchy;
            if (-7.0..0.0).contains(&sd) && dx < 4.0 + 0.6 * sd {
                v += self.falx * smoothstep(-7.0, -4.0, sd) * (1.0 - smoothstep(-1.5, 0.0, sd));
            }
        }
        // Pituitary gland, cavernous sinuses, carotid flow voids.
        let d = sub(p, anat.sella);
        if d[0].abs() < 18.0 && d[1].abs() < 14.0 && d[2].abs() < 10.0 {
            let c = 1.0 - smoothstep(0.7, 1.2, self.cavernous.s(p));
            let tex = 0.8 + 0.4 * fbm3(self.seed ^ 9, p, 1.5);
            v += (1.0 + self.cav_enh * tex - v) * c;
            let g = 1.0 - smoothstep(0.85, 1.1, self.gland.s(p));
            v += (1.0 + self.gland_enh - v) * g;
            for car in &self.carotid {
                let f = 1.0 - smoothstep(0.7, 1.2, car.s(p));
                v += (0.2 - v) * f * 0.85;
            }
        }
        for (blob, e) in &self.plexus {
            let s = blob.s(p);
            if s < 1.1 {
                v += (1.0 + e - v) * (1.0 - smoothstep(0.8, 1.1, s));
            }
        }
        v
    }

    /// Draws the vessels into `img` (intensities, row-major) where the
    /// underlying tissue is sulcal CSF or brain surface (`sulcal` ∈ [0, 1]).
    pub fn draw_vessels(&self, img: &mut [f32], sulcal: &[f32], size: usize) {
        for (pts, half, bright) in &self.vessels {
            let r = half.max(0.5);
            for (i, c) in pts.iter().enumerate() {
                // Thinner towards the end of a line.
                let taper = 1.0 - 0.6 * i as f32 / pts.len() as f32;
                let rr = r * taper;
                let (x0, x1) = ((c[0] - rr - 1.0).floor().max(0.0) as usize, ((c[0] + rr + 1.0).ceil() as usize).min(size));
                let (y0, y1) = ((c[1] - rr - 1.0).floor().max(0.0) as usize, ((c[1] + rr + 1.0).ceil() as usize).min(size));
                for y in y0..y1 {
                    for x in x0..x1 {
                        let (dx, dy) = (x as f32 + 0.5 - c[0], y as f32 + 0.5 - c[1]);
                        let w = 1.0 - smoothstep(rr - 0.8, rr + 0.8, (dx * dx + dy * dy).sqrt());
                        let j = y * size + x;
                        let target = 1.0 + bright;
                        let a = w * sulcal[j];
                        if target > img[j] {
                            img[j] += (target - img[j]) * a;
                        }
                    }
                }
            }
        }
    }
}
