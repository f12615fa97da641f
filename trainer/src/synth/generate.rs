//! One synthetic image from (seed, split, class, index): picks the anatomy,
//! the plane (with the class's rate of sellar levels, see `slices`), the
//! framing, size and look, places the class's lesion and renders. Each
//! image has its own RNG stream derived from those four numbers, so the
//! output does not depend on the order or the thread that makes it.

use super::anatomy::Anatomy;
use super::detmath::mix;
use super::distractors::Distractors;
use super::lesions::{self, Lesion, Scale};
use super::render::{self, Look};
use super::slices;
use mriscreen::rng::Rng;
use mriscreen::CLASSES;

/// Share of sellar (skull-base / midline) planes per class, in `CLASSES`
/// order. With equal class counts P(notumor | sellar) = 0.5/(0.25+0.25+0.5+1)
/// = 1/4 = P(notumor | general) = 0.5/(0.75+0.75+0.5).
pub const SELLAR_RATE: [f32; 4] = [0.25, 0.25, 0.5, 1.0];

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub seed: u64,
    pub difficulty: f32,
    pub size_min: usize,
    pub size_max: usize,
}

/// What was drawn, for `synth_metadata.csv`.
#[derive(Debug, Clone)]
pub struct Meta {
    pub anatomy: String,
    pub plane: &'static str,
    pub level_mm: f32,
    pub sellar: bool,
    pub size: usize,
    pub lesion: &'static str,
    pub radius_mm: f32,
    pub enhancement: f32,
}

pub struct Image {
    pub size: usize,
    pub pixels: Vec<u8>,
    pub meta: Meta,
}

/// The seed of image `index` of `class` in `split` (0 Training, 1 Testing).
pub fn image_seed(seed: u64, split: usize, class: usize, index: usize) -> u64 {
    let mut h = mix(seed ^ 0x5379_6E74_6854_756D); // "SynthTum"
    h = mix(h ^ split as u64);
    h = mix(h ^ (class as u64).wrapping_mul(0x1000_0000_01B3));
    mix(h ^ index as u64)
}

pub fn make(anatomies: &[Anatomy], p: &Params, split: usize, class: usize, index: usize) -> Image {
    let mut rng = Rng::new(image_seed(p.seed, split, class, index));
    let anat = &anatomies[((rng.uniform() * anatomies.len() as f32) as usize).min(anatomies.len() - 1)];
    let span = (p.size_max - p.size_min) as f32;
    let size = (p.size_min + (rng.uniform() * (span + 1.0)) as usize).min(p.size_max);
    let k = Scale::new(p.difficulty);
    let plane = slices::choose_plane(anat, SELLAR_RATE[class], k.size, &mut rng);
    let view = slices::frame(anat, &plane, size, &mut rng);
    let look = Look::random(p.difficulty, &mut rng);
    let distr = Distractors::new(anat, &plane, &view, p.difficulty, &mut rng);
    let lesion: Option<Lesion> = match CLASSES[class] {
        "glioma" => Some(lesions::glioma(anat, &plane, k, &mut rng)),
        "meningioma" => Some(lesions::meningioma(anat, &plane, k, &mut rng)),
        "pituitary" => {
            let s = plane.sellar.unwrap_or(slices::Sellar { centre: anat.sella, r: 6.0 });
            Some(lesions::pituitary(s.centre, s.r, k, &mut rng))
        }
        _ => None,
    };
    let pixels = render::render(anat, &view, lesion.as_ref(), &distr, &look, &mut rng);
    let (radius_mm, enhancement) = lesion.as_ref().map_or((0.0, 0.0), |l| l.size_contrast());
    Image {
        size,
        pixels,
        meta: Meta {
            anatomy: anat.name.clone(),
            plane: plane.orientation.name(),
            level_mm: plane.level,
            sellar: plane.sellar.is_some(),
            size,
            lesion: lesion.as_ref().map_or("none", |l| l.subtype()),
            radius_mm,
            enhancement,
        },
    }
}
