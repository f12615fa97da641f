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
        let ids: Vec<usize> = indices.iter().map(|&i| self.split(split)[i]).collect();
        let labels = ids.iter().map(|&i| self.samples[i].label).collect();
        let per = spec.len();
        let mut out = vec![0.0f32; ids.len() * per];
        if ids.is_empty() || per == 0 {
            return (out, labels);
        }
        let threads = self.threads.clamp(1, ids.len());
        let chunk = ids.len().div_ceil(threads);
        let one = |id: usize, dst: &mut [f32]| {
            let image = &self.samples[id].image;
            let tensor = match augment {
                Some((cfg, seed)) => preprocess(&augment_one(image, cfg, seed, id), spec),
                None => preprocess(image, spec),
            };
            dst.copy_from_slice(&tensor);
        };
        if threads == 1 {
            for (&id, dst) in ids.iter().zip(out.chunks_mut(per)) {
                one(id, dst);
            }
        } else {
            std::thread::scope(|s| {
                for (ids, dst) in ids.chunks(chunk).zip(out.chunks_mut(chunk * per)) {
                    let one = &one;
                    s.spawn(move || {
                        for (&id, d) in ids.iter().zip(dst.chunks_mut(per)) {
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
