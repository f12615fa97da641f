//! Preprocessing: one pure, deterministic function from a decoded image to the
//! model's input tensor. The trainer, the CLI and the browser all call
//! [`preprocess`], so a model sees the same numbers everywhere.
//!
//! Steps, in order:
//! 1. **Luminance** in [0, 1]: grey images as they are; colour with the
//!    ITU-R BT.601 weights (0.299 R + 0.587 G + 0.114 B); alpha composites onto
//!    black (the MRI background). Samples are divided by their type's maximum
//!    (255 or 65535), so 16-bit precision is kept.
//! 2. **Intensity scaling**, [`Intensity::Robust`] (default for mriscreen models):
//!    the 0.5th and 99.5th percentiles (numpy's default "linear" method) map to
//!    0 and 1, values outside are clipped. Scanners and film photos differ in
//!    window and gain; the percentile window removes that without letting a
//!    few hot pixels set the scale. [`Intensity::Unit`] keeps step 1's [0, 1]
//!    values, as torchvision's `ToTensor` does, for third-party models.
//! 3. **Resize** with an antialiased triangle filter whose support widens with
//!    the downscale factor (Pillow's `BILINEAR`, the same coefficients), either
//!    [`Resize::Letterbox`]: scaled to fit and centred on black, so anatomy is
//!    never stretched or cropped; or [`Resize::Stretch`] to the input size.
//! 4. **Channels and normalisation**: the grey plane is replicated to three
//!    channels, and channel c becomes (v − mean[c]) / std[c].
//!
//! A golden test (`tests/preprocess_golden.rs`) compares this against an
//! independent numpy + Pillow implementation in `tests/golden/preprocess_ref.py`.

use image::DynamicImage;
use serde::{Deserialize, Serialize};

/// How the image is fitted into the model's input rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Scale to fit, keep the aspect ratio, centre on black.
    Letterbox,
    /// Scale each axis to the input size independently.
    Stretch,
}

/// How raw intensities are scaled to [0, 1] before normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intensity {
    /// 0.5th–99.5th percentile window mapped to [0, 1], clipped.
    Robust,
    /// Sample value divided by the type's maximum (255, 65535).
    Unit,
}

/// Memory layout of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, 3, H, W]` (PyTorch, mriscreen).
    Nchw,
    /// `[1, H, W, 3]` (TensorFlow / Keras exports).
    Nhwc,
}

/// Everything preprocessing needs to know about a model's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub width: usize,
    pub height: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize: Resize,
    pub intensity: Intensity,
    pub layout: Layout,
}

impl Default for InputSpec {
    /// No size yet, plain [0, 1] scaling, letterboxed, NCHW.
    fn default() -> Self {
        InputSpec {
            width: 0,
            height: 0,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize: Resize::Letterbox,
            intensity: Intensity::Unit,
            layout: Layout::Nchw,
        }
    }
}

impl InputSpec {
    /// Number of f32 values in the input tensor.
    pub fn len(&self) -> usize {
        3 * self.width * self.height
    }

    /// Shape of the input tensor, batch pinned to 1.
    pub fn shape(&self) -> [usize; 4] {
        match self.layout {
            Layout::Nchw => [1, 3, self.height, self.width],
            Layout::Nhwc => [1, self.height, self.width, 3],
        }
    }
}

/// A single-channel f32 image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(width: usize, height: usize) -> Self {
        Plane { width, height, data: vec![0.0; width * height] }
    }
}

/// The whole pipeline: image → input tensor of `spec.len()` values laid out as
/// `spec.shape()`.
pub fn preprocess(image: &DynamicImage, spec: &InputSpec) -> Vec<f32> {
    to_input(&scaled(image, spec), spec)
}

/// Steps 1–2: luminance with the spec's intensity scaling, at the image's own
/// size (what the page's preview shows).
pub fn scaled(image: &DynamicImage, spec: &InputSpec) -> Plane {
    let mut plane = luminance(image);
    if spec.intensity == Intensity::Robust {
        robust_scale(&mut plane, 0.5, 99.5);
    }
    plane
}

/// Steps 3–4: a scaled plane fitted to the input size and laid out as a tensor.
pub fn to_input(plane: &Plane, spec: &InputSpec) -> Vec<f32> {
    to_tensor(&fit(plane, spec.width, spec.height, spec.resize), spec)
}

/// Step 1: luminance in [0, 1] (see the module docs).
pub fn luminance(image: &DynamicImage) -> Plane {
    use DynamicImage as D;
    let (w, h) = (image.width() as usize, image.height() as usize);
    let data = match image {
        D::ImageLuma8(b) => grey(b.as_raw(), 1, 255.0),
        D::ImageLumaA8(b) => grey(b.as_raw(), 2, 255.0),
        D::ImageRgb8(b) => colour(b.as_raw(), 3, 255.0),
        D::ImageRgba8(b) => colour(b.as_raw(), 4, 255.0),
        D::ImageLuma16(b) => grey(b.as_raw(), 1, 65535.0),
        D::ImageLumaA16(b) => grey(b.as_raw(), 2, 65535.0),
        D::ImageRgb16(b) => colour(b.as_raw(), 3, 65535.0),
        D::ImageRgba16(b) => colour(b.as_raw(), 4, 65535.0),
        D::ImageRgb32F(b) => colour(b.as_raw(), 3, 1.0),
        D::ImageRgba32F(b) => colour(b.as_raw(), 4, 1.0),
        other => colour(other.to_rgba32f().as_raw(), 4, 1.0),
    };
    Plane { width: w, height: h, data }
}

fn grey<T: Copy + Into<f64>>(raw: &[T], channels: usize, max: f64) -> Vec<f32> {
    raw.chunks_exact(channels)
        .map(|p| {
            let alpha = if channels == 2 { p[1].into() / max } else { 1.0 };
            (p[0].into() / max * alpha) as f32
        })
        .collect()
}

fn colour<T: Copy + Into<f64>>(raw: &[T], channels: usize, max: f64) -> Vec<f32> {
    raw.chunks_exact(channels)
        .map(|p| {
            let y = 0.299 * p[0].into() + 0.587 * p[1].into() + 0.114 * p[2].into();
            let alpha = if channels == 4 { p[3].into() / max } else { 1.0 };
            (y / max * alpha) as f32
        })
        .collect()
}

/// Step 2: maps the `lo`–`hi` percentile window to [0, 1] and clips. A flat
/// image (window of zero width) becomes all zeros.
pub fn robust_scale(plane: &mut Plane, lo: f64, hi: f64) {
    let (a, b) = (percentile(&plane.data, lo), percentile(&plane.data, hi));
    let range = b - a;
    for v in &mut plane.data {
        *v = if range > 0.0 { ((*v - a) / range).clamp(0.0, 1.0) } else { 0.0 };
    }
}

/// Percentile `p` (0–100) with linear interpolation between closest ranks,
/// numpy's default. Runs in linear time (selection, not a sort).
pub fn percentile(values: &[f32], p: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    let pos = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = (pos - lo as f64) as f32;
    let (_, &mut at_lo, upper) = v.select_nth_unstable_by(lo, f32::total_cmp);
    if frac == 0.0 || upper.is_empty() {
        return at_lo;
    }
    let at_hi = upper.iter().copied().fold(f32::INFINITY, f32::min);
    at_lo + (at_hi - at_lo) * frac
}

/// Step 3: fits `plane` into `width` × `height`.
pub fn fit(plane: &Plane, width: usize, height: usize, mode: Resize) -> Plane {
    match mode {
        Resize::Stretch => resize(plane, width, height),
        Resize::Letterbox => {
            let (x0, y0, nw, nh) = letterbox_rect(plane.width, plane.height, width, height);
            let inner = resize(plane, nw, nh);
            let mut out = Plane::new(width, height);
            for y in 0..nh {
                let dst = (y0 + y) * width + x0;
                out.data[dst..dst + nw].copy_from_slice(&inner.data[y * nw..(y + 1) * nw]);
            }
            out
        }
    }
}

/// Where a letterbox puts an `image_w × image_h` image inside `width × height`:
/// `(x0, y0, fitted width, fitted height)`, centred, aspect kept.
pub fn letterbox_rect(image_w: usize, image_h: usize, width: usize, height: usize) -> (usize, usize, usize, usize) {
    let scale = (width as f64 / image_w as f64).min(height as f64 / image_h as f64);
    let nw = ((image_w as f64 * scale).round() as usize).clamp(1, width);
    let nh = ((image_h as f64 * scale).round() as usize).clamp(1, height);
    ((width - nw) / 2, (height - nh) / 2, nw, nh)
}

/// Antialiased triangle-filter resize (Pillow's `BILINEAR`): horizontal pass,
/// then vertical; a pass whose size does not change is skipped (it would be
/// the identity).
pub fn resize(plane: &Plane, width: usize, height: usize) -> Plane {
    let mut cur = plane.clone();
    if width != cur.width {
        let taps = coefficients(cur.width, width);
        let mut out = Plane::new(width, cur.height);
        for y in 0..cur.height {
            let row = &cur.data[y * cur.width..(y + 1) * cur.width];
            for (x, (start, w)) in taps.iter().enumerate() {
                let s: f64 = w.iter().enumerate().map(|(k, wk)| wk * f64::from(row[start + k])).sum();
                out.data[y * width + x] = s as f32;
            }
        }
        cur = out;
    }
    if height != cur.height {
        let taps = coefficients(cur.height, height);
        let mut out = Plane::new(cur.width, height);
        for (y, (start, w)) in taps.iter().enumerate() {
            for x in 0..cur.width {
                let s: f64 = w
                    .iter()
                    .enumerate()
                    .map(|(k, wk)| wk * f64::from(cur.data[(start + k) * cur.width + x]))
                    .sum();
                out.data[y * cur.width + x] = s as f32;
            }
        }
        cur = out;
    }
    cur
}

/// For each output sample: the first input index and the normalised weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1 at scale 1
    (0..out_size)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let lo = ((centre - support + 0.5).trunc().max(0.0)) as usize;
            let hi = ((centre + support + 0.5).trunc() as usize).min(in_size);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| triangle((j as f64 - centre + 0.5) / filter_scale))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|x| *x /= total);
            }
            (lo, w)
        })
        .collect()
}

fn triangle(x: f64) -> f64 {
    (1.0 - x.abs()).max(0.0)
}

/// Step 4: replicate to three channels, normalise, lay out as `spec.layout`.
pub fn to_tensor(plane: &Plane, spec: &InputSpec) -> Vec<f32> {
    let n = plane.width * plane.height;
    let mut out = vec![0.0; 3 * n];
    for c in 0..3 {
        let (m, s) = (spec.mean[c], spec.std[c]);
        for (i, v) in plane.data.iter().enumerate() {
            let at = match spec.layout {
                Layout::Nchw => c * n + i,
                Layout::Nhwc => i * 3 + c,
            };
            out[at] = (v - m) / s;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba};

    fn spec(w: usize, h: usize) -> InputSpec {
        InputSpec {
            width: w,
            height: h,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize: Resize::Letterbox,
            intensity: Intensity::Unit,
            layout: Layout::Nchw,
        }
    }

    #[test]
    fn luminance_uses_bt601_and_type_range() {
        let rgb = RgbImage::from_pixel(1, 1, Rgb([255, 0, 0]));
        assert!((luminance(&rgb.into()).data[0] - 0.299).abs() < 1e-6);
        let g16 = ImageBuffer::<Luma<u16>, _>::from_pixel(1, 1, Luma([65535u16]));
        assert_eq!(luminance(&g16.into()).data[0], 1.0);
        let g16 = ImageBuffer::<Luma<u16>, _>::from_pixel(1, 1, Luma([1u16]));
        // 16-bit precision survives: 1/65535, not rounded to an 8-bit step.
        assert!((luminance(&g16.into()).data[0] - 1.0 / 65535.0).abs() < 1e-9);
    }

    #[test]
    fn alpha_composites_on_black() {
        let img = ImageBuffer::<Rgba<u8>, _>::from_pixel(1, 1, Rgba([255, 255, 255, 51]));
        assert!((luminance(&img.into()).data[0] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 50) == 2.5; ([1..=4], 10) == 1.3
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert!((percentile(&v, 10.0) - 1.3).abs() < 1e-6);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
    }

    #[test]
    fn robust_scale_clips_outliers_and_handles_flat_images() {
        let mut p = Plane { width: 201, height: 1, data: (0..201).map(|i| i as f32).collect() };
        p.data[200] = 1e6; // one hot pixel must not set the scale
        robust_scale(&mut p, 0.5, 99.5);
        assert_eq!(p.data[0], 0.0);
        assert_eq!(p.data[200], 1.0);
        assert!((p.data[100] - 0.5).abs() < 0.01, "{}", p.data[100]);
        let mut flat = Plane { width: 3, height: 1, data: vec![7.0; 3] };
        robust_scale(&mut flat, 0.5, 99.5);
        assert_eq!(flat.data, vec![0.0; 3]);
    }

    #[test]
    fn halving_averages_pairs() {
        // Downscale 4 -> 2: support 2, centres 1.0 and 3.0; weights over
        // inputs 0..3 are triangle((j-1+0.5)/2) = 0.75, 0.75, 0.25 (then
        // normalised), so out[0] = (0.75*0 + 0.75*1 + 0.25*2) / 1.75.
        let p = Plane { width: 4, height: 1, data: vec![0.0, 1.0, 2.0, 3.0] };
        let r = resize(&p, 2, 1);
        assert!((r.data[0] - 1.25 / 1.75).abs() < 1e-6, "{:?}", r.data);
        assert!((r.data[1] - (0.25 * 1.0 + 0.75 * 2.0 + 0.75 * 3.0) / 1.75).abs() < 1e-6);
    }

    #[test]
    fn same_size_resize_is_identity() {
        let p = Plane { width: 3, height: 2, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        assert_eq!(resize(&p, 3, 2), p);
    }

    #[test]
    fn letterbox_centres_on_black_without_stretching() {
        // A 4x2 white image into 4x4: rows 1 and 2 white, rows 0 and 3 black.
        let img = GrayImage::from_pixel(4, 2, Luma([255]));
        let t = preprocess(&img.into(), &spec(4, 4));
        assert_eq!(&t[0..4], &[0.0; 4]);
        assert_eq!(&t[4..12], &[1.0; 8]);
        assert_eq!(&t[12..16], &[0.0; 4]);
        // Replicated to three identical channels.
        assert_eq!(&t[0..16], &t[16..32]);
        assert_eq!(&t[0..16], &t[32..48]);
    }

    #[test]
    fn stretch_fills_the_frame() {
        let img = GrayImage::from_pixel(4, 2, Luma([255]));
        let mut s = spec(4, 4);
        s.resize = Resize::Stretch;
        assert!(preprocess(&img.into(), &s).iter().all(|&v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn normalisation_and_nhwc_layout() {
        let img = GrayImage::from_pixel(2, 2, Luma([255]));
        let mut s = spec(2, 2);
        s.mean = [0.5, 0.0, 1.0];
        s.std = [0.5, 2.0, 1.0];
        s.layout = Layout::Nhwc;
        let t = preprocess(&img.into(), &s);
        assert_eq!(&t[0..3], &[1.0, 0.5, 0.0]);
        assert_eq!(t.len(), 12);
    }

    #[test]
    fn deterministic() {
        let img: DynamicImage =
            GrayImage::from_fn(37, 23, |x, y| Luma([((x * 7 + y * 13) % 256) as u8])).into();
        let mut s = spec(16, 16);
        s.intensity = Intensity::Robust;
        assert_eq!(preprocess(&img, &s), preprocess(&img, &s));
    }
}
