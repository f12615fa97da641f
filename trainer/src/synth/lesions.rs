//! The three tumour classes, modelled on how they look on post-contrast T1
//! (Osborn, "Osborn's Brain", 2nd ed. 2018, ch. 16–18, 25; Louis et al.,
//! WHO CNS5 2021) and placed in anatomical coordinates on the chosen plane.
//!
//! * Glioma: intra-axial, centred in supratentorial hemispheric white matter
//!   away from the midline and the cortex (or the corpus callosum on midline
//!   sagittal cuts); lobulated margin; ring enhancement around a dark
//!   necrotic core (glioblastoma), patchy heterogeneous enhancement, or a
//!   non-enhancing hypointense mass (lower grade); a wider hypointense
//!   vasogenic oedema that spreads in white matter and spares cortex; mass
//!   effect.
//! * Meningioma: extra-axial, a dome with a broad base on the dura of the
//!   convexity or the falx; homogeneous bright enhancement, sharp margin,
//!   optional dural tail and calcification; pushes the cortex inward.
//! * Pituitary adenoma: a round homogeneous mass in the sella, growing up
//!   into the suprasellar cistern ("snowman") when large; cystic sometimes.
//!
//! `Scale` turns `--difficulty` into smaller sizes and lower contrast.

use super::anatomy::Anatomy;
use super::detmath::{self, fbm3, smoothstep};
use super::shape::{Blob, Push};
use super::slices::{add, at, dot, normalize, scale, sub, Orientation, Plane};
use mriscreen::rng::Rng;

/// How `--difficulty` d scales lesions: size × d^−½, contrast × d^−0.7.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub size: f32,
    pub contrast: f32,
}

impl Scale {
    pub fn new(difficulty: f32) -> Scale {
        Scale { size: detmath::pow(difficulty, -0.5), contrast: detmath::pow(difficulty, -0.7) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GliomaKind {
    Ring,
    Patchy,
    NonEnhancing,
}

#[derive(Debug, Clone)]
pub enum Lesion {
    Glioma { tumour: Blob, oedema: Blob, kind: GliomaKind, necrosis: f32, core: f32, enh: f32, oedema_k: f32, push: Push, seed: u64 },
    Meningioma { tumour: Blob, dura: [f32; 3], normal: [f32; 3], falx: bool, clip: bool, dura_sd: f32, enh: f32, tail: f32, base_r: f32, calcified: bool, push: Push, seed: u64 },
    Pituitary { body: Blob, upper: Option<Blob>, enh: f32, cyst: f32, push: Push, seed: u64 },
}

impl Lesion {
    pub fn subtype(&self) -> &'static str {
        match self {
            Lesion::Glioma { kind: GliomaKind::Ring, .. } => "glioma-ring",
            Lesion::Glioma { kind: GliomaKind::Patchy, .. } => "glioma-patchy",
            Lesion::Glioma { .. } => "glioma-nonenhancing",
            Lesion::Meningioma { falx: true, .. } => "meningioma-falx",
            Lesion::Meningioma { .. } => "meningioma-convexity",
            Lesion::Pituitary { upper: Some(_), .. } => "pituitary-macro",
            Lesion::Pituitary { .. } => "pituitary",
        }
    }

    /// (mean radius mm, enhancement above white matter) for the metadata.
    pub fn size_contrast(&self) -> (f32, f32) {
        match self {
            Lesion::Glioma { tumour, enh, .. } | Lesion::Meningioma { tumour, enh, .. } => (tumour.mean_radius(), *enh),
            Lesion::Pituitary { body, enh, .. } => (body.mean_radius(), *enh),
        }
    }

    fn push(&self) -> &Push {
        match self {
            Lesion::Glioma { push, .. } | Lesion::Meningioma { push, .. } | Lesion::Pituitary { push, .. } => push,
        }
    }

    /// Mass effect: where the tissue shown at `p` came from.
    pub fn source(&self, p: [f32; 3], anat: &Anatomy) -> [f32; 3] {
        let q = self.push().source(p);
        match self {
            // Only brain on the tumour's side of the dura moves; skull stays.
            Lesion::Meningioma { dura_sd, falx: false, .. } => {
                let w = smoothstep(*dura_sd - 0.5, *dura_sd + 2.0, anat.sd_at(p));
                [0, 1, 2].map(|k| p[k] + (q[k] - p[k]) * w)
            }
            _ => q,
        }
    }

    /// The T1-post intensity at `p`, given the intensity `v` without it.
    pub fn shade(&self, p: [f32; 3], v: f32, anat: &Anatomy) -> f32 {
        match self {
            Lesion::Glioma { tumour, oedema, kind, necrosis, core, enh, oedema_k, seed, .. } => {
                if norm2(sub(p, tumour.centre)) > sq(oedema.reach()) {
                    return v;
                }
                let mut v = v;
                let so = oedema.s(p);
                if so < 1.1 {
                    // Vasogenic oedema darkens white matter more than cortex.
                    let w = 1.0 - smoothstep(0.7, 1.08, so);
                    let wm = smoothstep(anat.gm, 1.0, v);
                    v *= 1.0 - oedema_k * w * (0.3 + 0.7 * wm);
                }
                let s = tumour.s(p);
                if s >= 1.1 {
                    return v;
                }
                let alpha = 1.0 - smoothstep(0.88, 1.1, s);
                let n1 = fbm3(*seed, p, 4.0);
                let n2 = fbm3(seed ^ 1, p, 2.5);
                let val = match kind {
                    GliomaKind::Ring => {
                        // Irregular necrosis, so the rim's thickness varies.
                        let edge = necrosis * (0.6 + 0.8 * n1);
                        let rim = smoothstep(edge - 0.1, edge + 0.1, s);
                        let c = core * (0.8 + 0.4 * n2);
                        let r = 1.0 + enh * (0.5 + 0.6 * n1 + 0.4 * n2);
                        c + (r - c) * rim
                    }
                    GliomaKind::Patchy => {
                        let t = smoothstep(0.3, 0.7, fbm3(seed ^ 2, p, 5.0));
                        let lo = 0.7 + 0.25 * n2;
                        let hi = 1.0 + enh * (0.5 + 0.8 * n1);
                        lo + (hi - lo) * t
                    }
                    // Darker than the tissue it replaces, whatever that is.
                    GliomaKind::NonEnhancing => v.min(1.0) * core * (0.9 + 0.2 * n2),
                };
                v + (val - v) * alpha
            }
            Lesion::Meningioma { tumour, dura, normal, falx, clip, dura_sd, enh, tail, base_r, calcified, seed, .. } => {
                if norm2(sub(p, *dura)) > sq(tumour.reach() + tail + 3.0) {
                    return v;
                }
                // Depth on the brain side of the dura (mm).
                let depth = if *falx { dot(sub(p, *dura), *normal) } else { anat.sd_at(p) - dura_sd };
                let mut v = v;
                let bright = 1.0 + enh * (0.85 + 0.3 * fbm3(*seed, p, 2.0));
                if *tail > 0.0 {
                    let along = sub(p, *dura);
                    let lateral = norm2(sub(along, scale(*normal, dot(along, *normal)))).sqrt();
                    let f = 1.0 - ((lateral - base_r) / tail).clamp(0.0, 1.0);
                    if lateral > 0.6 * base_r && f > 0.0 {
                        let thick = 0.8 + 2.2 * f;
                        let w = 1.0 - smoothstep(0.5 * thick, 0.5 * thick + 0.6, (depth - 0.5 * thick).abs());
                        v += (0.85 * bright - v) * w * f.sqrt();
                    }
                }
                let s = tumour.s(p);
                if s >= 1.05 {
                    return v;
                }
                let side = if *clip { smoothstep(-0.6, 0.4, depth) } else { 1.0 };
                let alpha = (1.0 - smoothstep(0.96, 1.03, s)) * side;
                let val = if *calcified && fbm3(seed ^ 3, p, 1.3) > 0.72 { 0.35 } else { bright };
                v + (val - v) * alpha
            }
            Lesion::Pituitary { body, upper, enh, cyst, seed, .. } => {
                if norm2(sub(p, body.centre)) > sq(body.reach() * 2.4) {
                    return v;
                }
                let sb = body.s(p);
                let s = upper.as_ref().map_or(sb, |u| sb.min(u.s(p)));
                if s >= 1.05 {
                    return v;
                }
                let alpha = 1.0 - smoothstep(0.93, 1.04, s);
                let n = fbm3(*seed, p, 2.0);
                let mut val = 1.0 + enh * (0.8 + 0.4 * n);
                if *cyst > 0.0 && sb < cyst * (0.8 + 0.4 * n) {
                    val = 0.45 + 0.1 * n;
                }
                v + (val - v) * alpha
            }
        }
    }
}

fn sq(x: f32) -> f32 {
    x * x
}
fn norm2(a: [f32; 3]) -> f32 {
    dot(a, a)
}

/// A random point on the plane within ±95 mm of its origin, moved off the
/// plane by up to `off` mm.
fn plane_point(plane: &Plane, off: f32, rng: &mut Rng) -> [f32; 3] {
    let p = at(plane, rng.range(-95.0, 95.0), rng.range(-95.0, 95.0));
    add(p, scale(plane.normal, rng.range(-off, off)))
}

/// Outward unit normal of the brain surface near `p` (−∇ signed distance).
pub fn outward(anat: &Anatomy, p: [f32; 3]) -> [f32; 3] {
    let h = 1.5;
    let g = [0, 1, 2].map(|k| {
        let (mut a, mut b) = (p, p);
        a[k] += h;
        b[k] -= h;
        anat.sd_at(b) - anat.sd_at(a)
    });
    normalize(g)
}

pub fn glioma(anat: &Anatomy, plane: &Plane, k: Scale, rng: &mut Rng) -> Lesion {
    let kind = match rng.uniform() {
        u if u < 0.5 => GliomaKind::Ring,
        u if u < 0.85 => GliomaKind::Patchy,
        _ => GliomaKind::NonEnhancing,
    };
    // Non-enhancing (lower-grade) gliomas are seen when diffuse and large.
    let u = rng.uniform();
    let r_min = if kind == GliomaKind::NonEnhancing { 9.0 } else { 5.0 };
    let r0 = (r_min + 17.0 * u * detmath::pow(u, 0.3)) * k.size;
    let midline_ok = plane.orientation == Orientation::Sagittal && plane.sellar.is_some();
    let wm_min = 0.5 * (anat.gm + 1.0);
    // Fallback if nothing fits: the deepest point seen on the plane.
    let (mut centre, mut deepest) = (plane.origin, f32::MIN);
    let mut r = r0;
    for attempt in 0..400 {
        if attempt % 100 == 99 {
            r *= 0.8;
        }
        let p = plane_point(plane, 0.45 * r, rng);
        let sd = anat.sd_at(p);
        if sd > deepest {
            (centre, deepest) = (p, sd);
        }
        if sd < 0.55 * r + 4.0 {
            continue;
        }
        if !midline_ok && (p[0] - anat.mid_x).abs() < 0.35 * r + 5.0 {
            continue;
        }
        // Supratentorial: not in the cerebellum or brainstem.
        if p[2] < anat.sella[2] + 12.0 && p[1] < anat.sella[1] - 12.0 {
            continue;
        }
        let t = anat.t1.sample(p);
        if t < if attempt < 250 { wm_min } else { 0.5 * (anat.csf + anat.gm) } {
            continue;
        }
        centre = p;
        break;
    }
    let rough = rng.range(0.3, 0.6);
    let tumour = Blob::random(rng, centre, r, 1.45, rough, (1.5, 4.5), 5);
    let (oed_r, oed_k) = match kind {
        GliomaKind::NonEnhancing => (rng.range(1.1, 1.5), rng.range(0.08, 0.25)),
        _ => (rng.range(1.4, 2.4), rng.range(0.15, 0.45)),
    };
    let rough = rng.range(0.12, 0.3);
    let oedema = Blob::random(rng, centre, r * oed_r, 1.25, rough, (3.0, 8.0), 6);
    let enh = rng.range(0.12, 0.7) * k.contrast;
    let core = match kind {
        GliomaKind::NonEnhancing => 1.0 - rng.range(0.18, 0.45) * k.contrast,
        _ => rng.range(0.3, 0.6),
    };
    let m = rng.range(0.15, 0.4) * r;
    Lesion::Glioma {
        tumour,
        oedema,
        kind,
        necrosis: rng.range(0.35, 0.75),
        core,
        enh,
        oedema_k: oed_k * k.contrast.min(1.3),
        push: Push { centre, r, m, width: 2.2 * r * oed_r.max(1.0) },
        seed: rng.next_u64(),
    }
}

pub fn meningioma(anat: &Anatomy, plane: &Plane, k: Scale, rng: &mut Rng) -> Lesion {
    let u = rng.uniform();
    let r0 = (5.0 + 15.0 * u * detmath::pow(u, 0.3)) * k.size;
    let mut r = r0;
    let falx_first = rng.uniform() < 0.3;
    // (dura point, normal into the brain, depth of the centre, falx?, dura's sd)
    let mut found = None;
    for attempt in 0..600 {
        if attempt % 150 == 149 {
            r *= 0.8;
        }
        let falx = falx_first != (attempt % 2 == 1 && attempt > 200);
        let t = rng.range(-0.15, 0.5) * r;
        if falx {
            let p = plane_point(plane, 0.0, rng);
            let side = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
            let n_in = [side, 0.0, 0.0];
            let d = [anat.mid_x, p[1], p[2]];
            if d[2] < anat.centroid[2] - 5.0 || anat.sd_at(add(d, scale(n_in, 0.5 * r + 3.0))) < 1.5 {
                continue;
            }
            let c = add(d, scale(n_in, t));
            if dot(sub(c, plane.origin), plane.normal).abs() > 0.5 * r {
                continue;
            }
            found = Some((d, n_in, t, true, 0.0));
            break;
        } else {
            let p = plane_point(plane, 0.0, rng);
            let sd = anat.sd_at(p);
            if !(0.3..4.0).contains(&sd) {
                continue;
            }
            let out = outward(anat, p);
            if dot(out, normalize(sub(p, anat.centroid))) < 0.2 {
                continue;
            }
            let gap = rng.range(0.5, 1.5);
            let d = add(p, scale(out, sd + gap));
            let n_in = scale(out, -1.0);
            let c = add(d, scale(n_in, t));
            if dot(sub(c, plane.origin), plane.normal).abs() > 0.5 * r {
                continue;
            }
            found = Some((d, n_in, t, false, anat.sd_at(d)));
            break;
        }
    }
    let (dura, normal, t, falx, dura_sd) = found.unwrap_or_else(|| {
        // Fallback (rare): a convexity point straight lateral of the origin.
        let d = add(plane.origin, [80.0, 0.0, 0.0]);
        (d, [-1.0, 0.0, 0.0], 0.0, false, anat.sd_at(d))
    });
    let centre = add(dura, scale(normal, t));
    let rough = rng.range(0.02, 0.08);
    let tumour = Blob::random(rng, centre, r, 1.15, rough, (2.0, 4.0), 3);
    let tail = if rng.uniform() < 0.6 { rng.range(0.6, 1.5) * r + 4.0 } else { 0.0 };
    Lesion::Meningioma {
        tumour,
        dura,
        normal,
        falx,
        clip: t >= 0.0 || !falx,
        dura_sd,
        enh: rng.range(0.18, 0.75) * k.contrast,
        tail,
        base_r: (r * r - t * t).max(0.09 * r * r).sqrt(),
        calcified: rng.uniform() < 0.1,
        push: Push { centre, r, m: rng.range(0.15, 0.4) * r, width: 2.2 * r },
        seed: rng.next_u64(),
    }
}

/// `centre` and `r` come from the plane's sellar draw (see `slices`).
pub fn pituitary(centre: [f32; 3], r: f32, k: Scale, rng: &mut Rng) -> Lesion {
    let rough = rng.range(0.02, 0.07);
    let body = Blob::random(rng, centre, r, 1.15, rough, (2.0, 3.5), 3);
    // Macroadenomas grow up through the diaphragma sellae.
    let upper = (r > 7.0).then(|| {
        let up = [centre[0], centre[1] + rng.range(-2.0, 1.0), centre[2] + 0.85 * r];
        Blob::random(rng, up, 0.7 * r, 1.15, 0.05, (2.0, 3.5), 3)
    });
    Lesion::Pituitary {
        body,
        upper,
        enh: rng.range(0.15, 0.65) * k.contrast,
        cyst: if rng.uniform() < 0.25 { rng.range(0.3, 0.6) } else { 0.0 },
        push: Push { centre: add(centre, [0.0, 0.0, 0.3 * r]), r, m: 0.2 * r, width: 2.0 * r },
        seed: rng.next_u64(),
    }
}
