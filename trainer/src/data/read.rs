//! Reads and decodes every image once, in parallel, with a progress bar.
//!
//! Each file goes through the shared decoder (`mriscreen::decode::decode`,
//! the one the page uses, with its size budgets and its refusal of truncated
//! JPEGs); a file it refuses is returned with the decoder's message, for the
//! report, and never stops the load. A decoded image is kept as decoded,
//! except that an 8-bit RGB(A) image whose pixels are all grey (R = G = B,
//! opaque) is stored as 8-bit grey: a third of the memory, and the shared
//! `luminance` gives bit-identical values for both (tested below), so the
//! trainer still preprocesses exactly what the page would. Its fingerprints
//! for the leakage check ([`super::dedup`]) are computed at the same time.
//! Work is handed out one file at a time over `threads` scoped threads and
//! results are stored by file index, so the outcome does not depend on timing.

use super::dedup::{fingerprint, Fingerprint};
use image::{DynamicImage, GrayImage};
use indicatif::{ProgressBar, ProgressStyle};
use mriscreen::decode::{decode, Limits};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A decoded image and its fingerprints.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: DynamicImage,
    pub fingerprint: Fingerprint,
}

/// Decodes `paths` over `threads` threads; `Err` holds why a file was refused.
pub fn read_all(paths: &[PathBuf], limits: &Limits, threads: usize, progress: bool) -> Vec<Result<Loaded, String>> {
    let bar = if progress { ProgressBar::new(paths.len() as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("decoding {bar:40} {pos}/{len} images  {elapsed} (eta {eta})") {
        bar.set_style(style);
    }
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, paths.len().max(1));
    let mut results: Vec<Option<Result<Loaded, String>>> = (0..paths.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break };
                        done.push((i, read_one(path, limits)));
                        bar.inc(1);
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            // A worker only panics on a bug (decode errors are values): pass it on.
            let done = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            for (i, r) in done {
                results[i] = Some(r);
            }
        }
    });
    bar.finish_and_clear();
    results.into_iter().map(|r| r.unwrap_or_else(|| Err("not read (internal error)".into()))).collect()
}

fn read_one(path: &Path, limits: &Limits) -> Result<Loaded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let decoded = decode(&bytes, limits).map_err(|e| e.to_string())?;
    let image = compact(decoded.image);
    let fingerprint = fingerprint(&image);
    Ok(Loaded { image, fingerprint })
}

/// 8-bit RGB or opaque RGBA with R = G = B everywhere → 8-bit grey; any
/// other image unchanged.
pub fn compact(image: DynamicImage) -> DynamicImage {
    let grey = |raw: &[u8], channels: usize| -> Option<Vec<u8>> {
        let ok = raw.chunks_exact(channels).all(|p| p[0] == p[1] && p[1] == p[2] && (channels == 3 || p[3] == 255));
        ok.then(|| raw.chunks_exact(channels).map(|p| p[0]).collect())
    };
    let (w, h) = (image.width(), image.height());
    let data = match &image {
        DynamicImage::ImageRgb8(b) => grey(b.as_raw(), 3),
        DynamicImage::ImageRgba8(b) => grey(b.as_raw(), 4),
        _ => None,
    };
    match data.and_then(|d| GrayImage::from_raw(w, h, d)) {
        Some(g) => DynamicImage::ImageLuma8(g),
        None => image,
    }
}

/// Bytes held by a decoded image.
pub fn image_bytes(image: &DynamicImage) -> u64 {
    image.as_bytes().len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb, RgbImage, Rgba, RgbaImage};
    use mriscreen::preprocess::{luminance, preprocess, InputSpec, Intensity};

    #[test]
    fn grey_rgb_compacts_to_luma_with_identical_luminance() {
        // Every 8-bit value: BT.601 on (v, v, v) must equal v / 255 exactly.
        let rgb = RgbImage::from_fn(256, 1, |x, _| Rgb([x as u8; 3]));
        let rgba = RgbaImage::from_fn(256, 1, |x, _| Rgba([x as u8, x as u8, x as u8, 255]));
        for img in [DynamicImage::from(rgb), DynamicImage::from(rgba)] {
            let small = compact(img.clone());
            assert!(matches!(small, DynamicImage::ImageLuma8(_)));
            assert_eq!(luminance(&small), luminance(&img));
        }
        // And the whole preprocessing agrees bit for bit on a realistic image.
        let rgb = RgbImage::from_fn(57, 43, |x, y| Rgb([((x * 5 + y * 3) % 256) as u8; 3]));
        let spec = InputSpec { width: 32, height: 32, intensity: Intensity::Robust, ..InputSpec::default() };
        let img = DynamicImage::from(rgb);
        assert_eq!(preprocess(&compact(img.clone()), &spec), preprocess(&img, &spec));
    }

    #[test]
    fn colour_and_translucent_images_are_kept() {
        let rgb = RgbImage::from_fn(4, 4, |x, _| Rgb([x as u8, 0, 0]));
        assert!(matches!(compact(rgb.into()), DynamicImage::ImageRgb8(_)));
        let rgba = RgbaImage::from_pixel(4, 4, Rgba([9, 9, 9, 128]));
        assert!(matches!(compact(rgba.into()), DynamicImage::ImageRgba8(_)));
        let grey = GrayImage::from_pixel(4, 4, Luma([3]));
        assert!(matches!(compact(grey.into()), DynamicImage::ImageLuma8(_)));
    }
}
