//! Batches from the decoded images held in memory.
//!
//! Every image was decoded once by `load_dataset`; a batch is the shared
//! `preprocess` of each image (after [`augment`] when training), laid out one
//! image after another (`N×3×H×W` for NCHW), with its labels. The images of a
//! batch are split into contiguous chunks over scoped threads, each writing
//! its own part of the output. The augmentation seed of an image derives
//! from the epoch seed and the image's index in the dataset
//! ([`sample_seed`]), so a batch is the same whatever the thread count and
//! whatever batch the image lands in.

use super::augment::{augment, AugmentConfig};
use super::split::{derive_seed, shuffled};
use super::{Dataset, Split};
use mriscreen::rng::Rng;
use mriscreen::preprocess::{preprocess, InputSpec};

/// The augmentation seed of sample `index` in the epoch seeded `seed`.
pub fn sample_seed(seed: u64, index: usize) -> u64 {
    derive_seed(seed, index as u64)
}

impl Dataset {
    /// Preprocessed images and labels for positions `indices` of `split`
    /// (positions in [`Dataset::split`], e.g. from [`Dataset::epoch_order`]).
    /// With `augment = Some((cfg, epoch_seed))` each image is augmented first.
    /// Returns `indices.len() × spec.len()` values and `indices.len()` labels.
    ///
    /// Panics if a position is outside the split (a caller bug, not bad input).
    pub fn batch(&self, split: Split, indices: &[usize], spec: &InputSpec, augment: Option<(&AugmentConfig, u64)>) -> (Vec<f32>, Vec<u32>) {
        let (mut views, labels) = self.batch_views(split, indices, &[spec], augment);
        (views.pop().unwrap_or_default(), labels)
    }

    /// [`Dataset::batch`] for several input contracts at once: each image is
    /// augmented once and that one augmented image is preprocessed for every
    /// spec (a student and its teacher see the same image, each at its own
    /// size). Returns one batch per spec, and the labels.
    pub fn batch_views(&self, split: Split, indices: &[usize], specs: &[&InputSpec], augment: Option<(&AugmentConfig, u64)>) -> (Vec<Vec<f32>>, Vec<u32>) {
        let ids: Vec<usize> = indices.iter().map(|&i| self.split(split)[i]).collect();
        let labels = ids.iter().map(|&i| self.samples[i].label).collect();
        let pers: Vec<usize> = specs.iter().map(|s| s.len()).collect();
        let mut out: Vec<Vec<f32>> = pers.iter().map(|&per| vec![0.0f32; ids.len() * per]).collect();
        if ids.is_empty() || pers.contains(&0) {
            return (out, labels);
        }
        let one = |id: usize, dst: &mut [&mut [f32]]| {
            let image = &self.samples[id].image;
            let augmented = augment.map(|(cfg, seed)| augment_one(image, cfg, seed, id));
            for (spec, d) in specs.iter().zip(dst.iter_mut()) {
                d.copy_from_slice(&preprocess(augmented.as_ref().unwrap_or(image), spec));
            }
        };
        // Each image's slice of every view.
        let mut slots: Vec<Vec<&mut [f32]>> = (0..ids.len()).map(|_| Vec::with_capacity(specs.len())).collect();
        for (view, &per) in out.iter_mut().zip(&pers) {
            for (slot, d) in slots.iter_mut().zip(view.chunks_mut(per)) {
                slot.push(d);
            }
        }
        let threads = self.threads.clamp(1, ids.len());
        let chunk = ids.len().div_ceil(threads);
        if threads == 1 {
            for (&id, dst) in ids.iter().zip(slots.iter_mut()) {
                one(id, dst);
            }
        } else {
            std::thread::scope(|s| {
                for (ids, dst) in ids.chunks(chunk).zip(slots.chunks_mut(chunk)) {
                    let one = &one;
                    s.spawn(move || {
                        for (&id, d) in ids.iter().zip(dst.iter_mut()) {
                            one(id, d);
                        }
                    });
                }
            });
        }
        (out, labels)
    }

    /// Positions `0..len` of `split` in an order shuffled by `seed` (one
    /// epoch); cut it into batches with `chunks(batch_size)`.
    pub fn epoch_order(&self, split: Split, seed: u64) -> Vec<usize> {
        shuffled(self.split(split).len(), seed)
    }
}

fn augment_one(image: &image::DynamicImage, cfg: &AugmentConfig, seed: u64, id: usize) -> image::DynamicImage {
    augment(image, cfg, &mut Rng::new(sample_seed(seed, id)))
}
