//! From stored sample values to a displayable image: Bits Stored, High Bit
//! and Pixel Representation (PS3.3 C.7.6.3.1), the modality rescale
//! (C.11.1), the VOI window (C.11.2.1.2 LINEAR, C.11.2.1.3 LINEAR_EXACT and
//! SIGMOID) or, without one, the 0.5–99.5 percentile range, and the
//! MONOCHROME1 inversion. Grey frames come out as 16-bit grey over the full
//! 0..=65535 range; colour frames keep their colour.
//!
//! Every stored value has at most 16 bits, so the whole chain is computed
//! once per possible value into a lookup table, and the percentiles come
//! from a histogram: no per-pixel floating point, no sorting.

use super::pixels::Geometry;
use image::{DynamicImage, ImageBuffer, Luma, Rgb};
use serde::Serialize;

const WHITE: f64 = 65535.0;

/// The VOI window that mapped modality values to grey levels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub source: WindowSource,
}

/// Where the window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    /// Window Center / Width (0028,1050–1051), first value, with the file's
    /// VOI LUT Function.
    File,
    /// No usable window in the file: the 0.5th to 99.5th percentile of the
    /// frame's values, mapped linearly (LINEAR_EXACT).
    Percentiles,
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    pub(crate) fn parse(value: &str) -> VoiFunction {
        match value.trim_matches([' ', '\0']) {
            "LINEAR_EXACT" => VoiFunction::LinearExact,
            "SIGMOID" => VoiFunction::Sigmoid,
            _ => VoiFunction::Linear,
        }
    }

    /// The grey level (0..=65535) of modality value `x` (PS3.3 C.11.2.1.2.1,
    /// C.11.2.1.3.1–2).
    fn apply(self, x: f64, center: f64, width: f64) -> f64 {
        let y = match self {
            VoiFunction::Linear => {
                let (c, w) = (center - 0.5, width - 1.0);
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    1.0
                } else {
                    (x - c) / w + 0.5
                }
            }
            VoiFunction::LinearExact => ((x - center) / width + 0.5).clamp(0.0, 1.0),
            VoiFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - center) / width).exp()),
        };
        (y * WHITE).round().clamp(0.0, WHITE)
    }

    /// Whether the width is one this function can use.
    fn accepts(self, width: f64) -> bool {
        width.is_finite() && if self == VoiFunction::Linear { width >= 1.0 } else { width > 0.0 }
    }
}

/// What the file asks for, in modality units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Voi {
    pub slope: f64,
    pub intercept: f64,
    /// Window Center and Width, first values, when both are present.
    pub window: Option<(f64, f64)>,
    pub function: VoiFunction,
    pub monochrome1: bool,
}

/// Stored bits to a signed value: the Bits Stored bits ending at High Bit,
/// two's complement when Pixel Representation is 1.
struct Stored {
    shift: u32,
    bits: u32,
    signed: bool,
}

impl Stored {
    fn new(geo: &Geometry) -> Stored {
        let bits = u32::from(geo.bits_stored);
        let shift = (u32::from(geo.high_bit) + 1).saturating_sub(bits);
        Stored { shift, bits, signed: geo.signed }
    }

    fn min(&self) -> i32 {
        if self.signed { -(1 << (self.bits - 1)) } else { 0 }
    }

    fn count(&self) -> usize {
        1 << self.bits
    }

    /// Index of the stored value in 0..count (value − min).
    fn index(&self, raw: u16) -> usize {
        let v = (u32::from(raw) >> self.shift) & ((1u32 << self.bits) - 1);
        if self.signed { (v ^ (1 << (self.bits - 1))) as usize } else { v as usize }
    }
}

/// A grey frame: stored values → 16-bit grey, with the window used.
pub(crate) fn grey(raw: &[u16], geo: &Geometry, voi: &Voi) -> (DynamicImage, Window) {
    let stored = Stored::new(geo);
    let modality = |i: usize| (stored.min() + i as i32) as f64 * voi.slope + voi.intercept;
    let mut histogram = vec![0u32; stored.count()];
    for &r in raw {
        histogram[stored.index(r)] += 1;
    }
    let window = match voi.window {
        Some((center, width)) if center.is_finite() && voi.function.accepts(width) => {
            Window { center, width, source: WindowSource::File }
        }
        _ => percentile_window(&histogram, modality),
    };
    let function = if window.source == WindowSource::File { voi.function } else { VoiFunction::LinearExact };
    let lut: Vec<u16> = (0..stored.count())
        .map(|i| {
            let y = if window.width > 0.0 { function.apply(modality(i), window.center, window.width) } else { 0.0 };
            let y = if voi.monochrome1 { WHITE - y } else { y };
            y as u16
        })
        .collect();
    let pixels: Vec<u16> = raw.iter().map(|&r| lut[stored.index(r)]).collect();
    let image = ImageBuffer::<Luma<u16>, _>::from_raw(geo.columns, geo.rows, pixels).map(DynamicImage::ImageLuma16);
    (image.unwrap_or_else(|| DynamicImage::new_luma16(geo.columns, geo.rows)), window)
}

/// The 0.5th and 99.5th percentiles (lower and upper nearest rank over the
/// n values: ranks ⌊0.005 (n−1)⌋ and ⌈0.995 (n−1)⌉), as a window in
/// modality units; the full range when those are equal; width 0 for a
/// frame with a single value.
fn percentile_window(histogram: &[u32], modality: impl Fn(usize) -> f64) -> Window {
    let n: u64 = histogram.iter().map(|&c| u64::from(c)).sum();
    let at_rank = |rank: u64| {
        let mut seen = 0u64;
        histogram
            .iter()
            .position(|&c| {
                seen += u64::from(c);
                seen > rank
            })
            .unwrap_or(0)
    };
    let last = n.saturating_sub(1);
    let (mut lo, mut hi) = (at_rank(last / 200), at_rank((last * 199).div_ceil(200)));
    if lo == hi {
        lo = histogram.iter().position(|&c| c > 0).unwrap_or(0);
        hi = histogram.iter().rposition(|&c| c > 0).unwrap_or(0);
    }
    let (a, b) = (modality(lo), modality(hi));
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    Window { center: (a + b) / 2.0, width: b - a, source: WindowSource::Percentiles }
}

/// A colour frame (samples R, G, B per pixel; or Y, Cb, Cr when `ybr`, PS3.3
/// C.7.6.3.1.2 YBR_FULL) as 8-bit or 16-bit RGB.
pub(crate) fn colour(raw: &[u16], geo: &Geometry, ybr: bool) -> DynamicImage {
    let (w, h) = (geo.columns, geo.rows);
    if geo.bits_allocated == 8 {
        let mut rgb: Vec<u8> = raw.iter().map(|&v| v.min(255) as u8).collect();
        if ybr {
            for p in rgb.chunks_exact_mut(3) {
                let (y, cb, cr) = (f32::from(p[0]), f32::from(p[1]) - 128.0, f32::from(p[2]) - 128.0);
                let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
                p[0] = to_u8(y + 1.402 * cr);
                p[1] = to_u8(y - 0.344_136 * cb - 0.714_136 * cr);
                p[2] = to_u8(y + 1.772 * cb);
            }
        }
        let image = ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8);
        return image.unwrap_or_else(|| DynamicImage::new_rgb8(w, h));
    }
    let stored = Stored::new(geo);
    let max = f64::from((1u32 << stored.bits) - 1);
    let rgb: Vec<u16> = raw.iter().map(|&r| (stored.index(r) as f64 * WHITE / max).round() as u16).collect();
    let image = ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, rgb).map(DynamicImage::ImageRgb16);
    image.unwrap_or_else(|| DynamicImage::new_rgb16(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(bits: u16, signed: bool) -> Geometry {
        Geometry {
            rows: 1,
            columns: 4,
            samples: 1,
            bits_allocated: 16,
            bits_stored: bits,
            high_bit: bits - 1,
            signed,
            planar: false,
            frames: 1,
        }
    }

    fn voi(window: Option<(f64, f64)>, monochrome1: bool) -> Voi {
        Voi { slope: 1.0, intercept: 0.0, window, function: VoiFunction::Linear, monochrome1 }
    }

    fn values(img: &DynamicImage) -> Vec<u16> {
        img.as_luma16().expect("16-bit grey").as_raw().clone()
    }

    #[test]
    fn linear_window_follows_the_standard_formula() {
        // Centre 600, width 1600: −200 and below → 0, above 1399 → 65535,
        // in between ((x − 599.5) / 1599 + 0.5) · 65535.
        let (img, w) = grey(&[0, 600, 1399, 1400], &geo(16, false), &voi(Some((600.0, 1600.0)), false));
        let y = |x: f64| (((x - 599.5) / 1599.0 + 0.5) * 65535.0).round() as u16;
        assert_eq!(values(&img), vec![y(0.0), y(600.0), 65535, 65535]);
        assert_eq!(y(1399.0), 65535);
        let (img, _) = grey(&[0, 100], &geo(16, false), &voi(Some((900.0, 1600.0)), false));
        assert_eq!(values(&img)[0], 0, "99.5 is the lower edge");
        assert_eq!(w, Window { center: 600.0, width: 1600.0, source: WindowSource::File });
    }

    #[test]
    fn monochrome1_inverts() {
        let raw = [0, 300, 600, 1400];
        let (normal, _) = grey(&raw, &geo(16, false), &voi(Some((600.0, 1600.0)), false));
        let (inverted, _) = grey(&raw, &geo(16, false), &voi(Some((600.0, 1600.0)), true));
        for (a, b) in values(&normal).iter().zip(values(&inverted)) {
            assert_eq!(u32::from(*a) + u32::from(b), 65535);
        }
        assert_eq!(values(&inverted)[3], 0, "white becomes black");
    }

    #[test]
    fn without_a_window_the_percentiles_span_the_range() {
        let raw: Vec<u16> = (0..1000).collect();
        let g = Geometry { columns: 1000, ..geo(16, false) };
        let (img, w) = grey(&raw, &g, &voi(None, false));
        assert_eq!(w.source, WindowSource::Percentiles);
        // Ranks 4 and 995 of 0..999.
        assert_eq!((w.center - w.width / 2.0, w.center + w.width / 2.0), (4.0, 995.0));
        let v = values(&img);
        assert_eq!((v[0], v[4], v[995], v[999]), (0, 0, 65535, 65535));
        // A width below 1 is unusable for LINEAR: percentiles instead.
        let (_, w) = grey(&raw, &g, &voi(Some((10.0, 0.5)), false));
        assert_eq!(w.source, WindowSource::Percentiles);
    }

    #[test]
    fn signed_values_and_rescale() {
        // 12 bits stored, signed: 0xFFF is −1, 0x800 is −2048.
        let g = geo(12, true);
        let s = Stored::new(&g);
        assert_eq!(s.min() + s.index(0x0FFF) as i32, -1);
        assert_eq!(s.min() + s.index(0x0800) as i32, -2048);
        assert_eq!(s.min() + s.index(0x07FF) as i32, 2047);
        // Rescale −1024 + 2·v; window on the rescaled values.
        let v = Voi { slope: 2.0, intercept: -1024.0, ..voi(Some((0.0, 2.0)), false) };
        let (img, _) = grey(&[512, 511, 513, 0x0FFF], &g, &v);
        let y = values(&img);
        assert_eq!((y[1], y[2], y[3]), (0, 65535, 0));
    }

    #[test]
    fn a_flat_frame_is_black_not_a_division_by_zero() {
        let (img, w) = grey(&[7, 7, 7, 7], &geo(16, false), &voi(None, false));
        assert_eq!(values(&img), vec![0; 4]);
        assert_eq!(w.width, 0.0);
    }

    #[test]
    fn ybr_full_converts_to_rgb() {
        let g = Geometry { samples: 3, bits_allocated: 8, bits_stored: 8, high_bit: 7, columns: 2, ..geo(8, false) };
        let img = colour(&[128, 128, 128, 76, 85, 255], &g, true);
        let rgb = img.as_rgb8().unwrap().as_raw().clone();
        assert_eq!(&rgb[..3], &[128, 128, 128]);
        assert!(rgb[3] > 250 && rgb[4] < 5 && rgb[5] < 5, "{rgb:?}"); // pure red
    }
}
