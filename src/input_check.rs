//! A check on what was dropped in, beside the model's answer. MRI slices are
//! grey; a colour image is more likely a photo, a screenshot with overlays or
//! a figure, and the model (trained on grey MRI only) answers it anyway, often
//! confidently. [`colour_fraction`] measures how much of the image is in
//! colour; above [`COLOUR_LIMIT`] the result is flagged for expert review,
//! whatever the model's confidence.
//!
//! This catches colour images only: a grey photo or a grey non-brain image
//! passes it.

use image::DynamicImage;

/// A pixel is in colour when its channels differ by more than this share of
/// full scale. JPEG chroma noise on a grey image saved as RGB stays far below.
pub const CHANNEL_SPREAD: f64 = 0.1;

/// The share of visible pixels in colour above which an input counts as a
/// colour image.
pub const COLOUR_LIMIT: f32 = 0.05;

/// The share (0–1) of visible pixels (alpha at least half) whose channels
/// differ by more than [`CHANNEL_SPREAD`]; 0 for grey images.
pub fn colour_fraction(image: &DynamicImage) -> f32 {
    use DynamicImage as D;
    match image {
        D::ImageLuma8(_) | D::ImageLumaA8(_) | D::ImageLuma16(_) | D::ImageLumaA16(_) => 0.0,
        D::ImageRgb8(b) => fraction(b.as_raw(), 3, 255.0),
        D::ImageRgba8(b) => fraction(b.as_raw(), 4, 255.0),
        D::ImageRgb16(b) => fraction(b.as_raw(), 3, 65535.0),
        D::ImageRgba16(b) => fraction(b.as_raw(), 4, 65535.0),
        D::ImageRgb32F(b) => fraction(b.as_raw(), 3, 1.0),
        D::ImageRgba32F(b) => fraction(b.as_raw(), 4, 1.0),
        other => fraction(other.to_rgba32f().as_raw(), 4, 1.0),
    }
}

/// Whether `fraction` (from [`colour_fraction`]) makes the input a colour image.
pub fn is_colour(fraction: f32) -> bool {
    fraction > COLOUR_LIMIT
}

fn fraction<T: Copy + Into<f64>>(raw: &[T], channels: usize, max: f64) -> f32 {
    let (mut visible, mut coloured) = (0usize, 0usize);
    for p in raw.chunks_exact(channels) {
        if channels == 4 && p[3].into() < max / 2.0 {
            continue;
        }
        visible += 1;
        let (r, g, b) = (p[0].into(), p[1].into(), p[2].into());
        if r.max(g).max(b) - r.min(g).min(b) > CHANNEL_SPREAD * max {
            coloured += 1;
        }
    }
    if visible == 0 { 0.0 } else { (coloured as f64 / visible as f64) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn grey_images_have_no_colour() {
        let grey = GrayImage::from_fn(16, 16, |x, y| Luma([(x * 16 + y) as u8]));
        assert_eq!(colour_fraction(&DynamicImage::ImageLuma8(grey.clone())), 0.0);
        // The same image stored as RGB, with a small tint as JPEG chroma noise leaves.
        let rgb = RgbImage::from_fn(16, 16, |x, y| {
            let v = grey.get_pixel(x, y)[0];
            Rgb([v, v.saturating_add(6), v.saturating_sub(4)])
        });
        assert_eq!(colour_fraction(&DynamicImage::ImageRgb8(rgb)), 0.0);
    }

    #[test]
    fn counts_the_share_of_coloured_pixels() {
        // A grey 10×10 image with one coloured row: 10 %.
        let img = RgbImage::from_fn(10, 10, |_, y| if y == 3 { Rgb([200, 40, 40]) } else { Rgb([90, 90, 90]) });
        let f = colour_fraction(&DynamicImage::ImageRgb8(img));
        assert!((f - 0.1).abs() < 1e-6, "{f}");
        assert!(is_colour(f));
        let f16 = colour_fraction(&DynamicImage::ImageRgb16(ImageBuffer::from_fn(4, 4, |x, _| {
            if x == 0 { Rgb([0u16, 65535, 0]) } else { Rgb([1000, 1000, 1000]) }
        })));
        assert!((f16 - 0.25).abs() < 1e-6, "{f16}");
        // Just one coloured pixel in 400 is not a colour image.
        let speck = RgbImage::from_fn(20, 20, |x, y| if (x, y) == (5, 5) { Rgb([255, 0, 0]) } else { Rgb([30, 30, 30]) });
        assert!(!is_colour(colour_fraction(&DynamicImage::ImageRgb8(speck))));
    }

    #[test]
    fn transparent_pixels_do_not_count() {
        // Coloured but transparent left half, grey opaque right half: no colour seen.
        let img = RgbaImage::from_fn(8, 8, |x, _| if x < 4 { Rgba([255, 0, 0, 0]) } else { Rgba([50, 50, 50, 255]) });
        assert_eq!(colour_fraction(&DynamicImage::ImageRgba8(img)), 0.0);
        let clear = RgbaImage::from_pixel(4, 4, Rgba([255, 0, 0, 0]));
        assert_eq!(colour_fraction(&DynamicImage::ImageRgba8(clear)), 0.0);
    }
}
