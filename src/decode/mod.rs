//! Image decoding with budgets.
//!
//! Reads JPEG (baseline and progressive), PNG (1–16 bit; grey, grey+alpha, RGB,
//! RGBA, palette), BMP, TIFF and WebP through the `image` crate with only those
//! codecs compiled in (TIFF and WebP with the `all-formats` feature: without
//! it, the page's CPU-only engine, such a file is [`DecodeError::OtherEngine`]
//! and its [`Pixels`] come from the full engine). The decoded image keeps its sample depth (16-bit stays
//! 16-bit, grey stays grey) so that preprocessing sees the full precision.
//!
//! Budgets are checked before any pixel buffer is allocated: the file size
//! against [`Limits::max_bytes`], and the width × height read from the header
//! against [`Limits::max_pixels`] (decompression bombs: a few hundred bytes of
//! PNG can claim 100000 × 100000 pixels). EXIF orientation is applied, so a
//! phone photo of a film is upright.
//!
//! This module owns what both decoders share ([`Limits`], [`DecodeError`],
//! [`Decoded`]) and dispatches on the bytes: DICOM files (`DICM` at byte 128;
//! see [`dicom`] for files without the preamble) go to [`dicom`], which holds
//! them to the same budgets and returns one frame; everything else to
//! `raster`, the image-crate formats.

pub mod dicom;
mod raster;

use crate::model::tensor_data::le_bytes;
use dicom::DicomSummary;
use image::DynamicImage;

/// Size budgets for one input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width × height accepted, read from the header before decoding.
    pub max_pixels: u64,
    /// Smallest width and height accepted: below this there is nothing to screen.
    pub min_side: u32,
}

impl Default for Limits {
    /// 64 MiB files, 64 megapixels (an 8000 × 8000 scan or a 50 MP phone photo),
    /// at least 16 pixels a side.
    fn default() -> Self {
        Limits { max_bytes: 64 << 20, max_pixels: 64_000_000, min_side: 16 }
    }
}

impl Limits {
    /// Holds an image's size (from its header, before any pixel buffer) to
    /// `max_pixels` and `min_side`.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(DecodeError::TooManyPixels { width, height, pixels, limit: self.max_pixels });
        }
        if width < self.min_side || height < self.min_side {
            return Err(DecodeError::TooSmall { width, height, min: self.min_side });
        }
        Ok(())
    }
}

/// Why an image could not be read. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the file is empty (0 bytes); choose the image file itself, not a shortcut or a folder")]
    Empty,
    #[error("the file is {bytes} bytes, over the {limit}-byte limit for one image; export the scan at a smaller size")]
    TooLarge { bytes: usize, limit: usize },
    #[error("this looks like a text file, not an image (it starts with {start:?}); choose a JPEG, PNG, BMP, TIFF, WebP or DICOM image")]
    Text { start: String },
    #[error("unrecognised image format (the file starts with bytes {magic}); supported formats are JPEG, PNG, BMP, TIFF, WebP and DICOM (with the DICM marker at byte 128)")]
    UnknownFormat { magic: String },
    #[error("the image header says {width} × {height} pixels ({pixels} in all), over the limit of {limit}; this is either a corrupt file or far larger than any scan — export it at a smaller size")]
    TooManyPixels { width: u32, height: u32, pixels: u64, limit: u64 },
    #[error("the image is only {width} × {height} pixels; at least {min} × {min} are needed to screen anything")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("this build of the engine does not decode {format} files; the page decodes them with its full engine")]
    OtherEngine { format: &'static str },
    #[error("the {format} file is truncated or corrupt ({detail}); copy the file again from its source")]
    Corrupt { format: &'static str, detail: String },
    #[error("frame {frame} was asked for, but this file has {frames} frame(s), numbered 0 to {last}; choose a frame in that range", last = .frames.saturating_sub(1))]
    FrameOutOfRange { frame: u32, frames: u32 },
    #[error("this DICOM file uses {name} (transfer syntax {uid}), which is not supported; re-export the series uncompressed (Explicit VR Little Endian), RLE Lossless or JPEG (baseline or lossless), e.g. with `gdcmconv --raw` or `dcmdjpeg`, or save the slice as PNG")]
    DicomUnsupportedSyntax { name: String, uid: String },
    #[error("this DICOM file holds no image ({what}); choose a file from the MR image series, not a report, structure set or directory")]
    DicomNoImage { what: String },
    #[error("this DICOM image cannot be read: {detail}; re-export it as MONOCHROME2 (or RGB) with 8 or 16 bits per sample, or save the slice as PNG")]
    DicomUnsupportedImage { detail: String },
    #[error("the DICOM header says {frames} frame(s) of {columns} × {rows} pixels ({pixels} in all), over the limit of {limit}; this is either a corrupt file or far larger than any scan — export the slices you need as separate files")]
    DicomTooManyPixels { rows: u32, columns: u32, frames: u32, pixels: u64, limit: u64 },
}

/// A decoded image and the format it came from.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: DynamicImage,
    pub format: &'static str,
    /// Frames in the file: 1 for an ordinary image, more for a multi-frame DICOM.
    pub frames: u32,
    /// The frame decoded (0-based).
    pub frame: u32,
    /// For a DICOM file, what may be shown about it (nothing identifying).
    pub dicom: Option<DicomSummary>,
}

/// Decodes `bytes` into an image within `limits`: the middle frame of a
/// multi-frame DICOM file, the image itself otherwise.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    decode_frame(bytes, limits, None)
}

/// Decodes frame `frame` of `bytes` (None: the default, the middle frame
/// `frames / 2`); an ordinary image has the single frame 0.
pub fn decode_frame(bytes: &[u8], limits: &Limits, frame: Option<u32>) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { bytes: bytes.len(), limit: limits.max_bytes });
    }
    if dicom::is_dicom(bytes) {
        return dicom::decode(bytes, limits, frame);
    }
    raster::decode(bytes, limits, frame)
}

/// A decoded image as plain parts, to pass from one build of the engine to
/// another: the page's CPU-only engine has no TIFF or WebP decoder, so its
/// worker decodes such a file with the full engine and classifies the parts
/// (`MriScreen.decode_pixels`, `MriScreen.classify_pixels`). The samples are
/// the image's own, in its own type (16-bit and float samples as
/// little-endian bytes): nothing is converted on the way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pixels {
    /// The file's format ([`Decoded::format`]).
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// The sample layout: `L8`, `La8`, `Rgb8`, `Rgba8`, `L16`, `La16`, `Rgb16`, `Rgba16`, `Rgb32F` or `Rgba32F`.
    pub color: String,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// How long decoding took, in milliseconds.
    pub decode_ms: f64,
}

impl Pixels {
    /// The parts of a decoded single-frame image (a DICOM file's summary and frames are not carried).
    pub fn of(decoded: &Decoded, decode_ms: f64) -> Pixels {
        let image = &decoded.image;
        let data = match image {
            DynamicImage::ImageLuma16(i) => le_bytes(i.as_raw(), u16::to_le_bytes),
            DynamicImage::ImageLumaA16(i) => le_bytes(i.as_raw(), u16::to_le_bytes),
            DynamicImage::ImageRgb16(i) => le_bytes(i.as_raw(), u16::to_le_bytes),
            DynamicImage::ImageRgba16(i) => le_bytes(i.as_raw(), u16::to_le_bytes),
            DynamicImage::ImageRgb32F(i) => le_bytes(i.as_raw(), f32::to_le_bytes),
            DynamicImage::ImageRgba32F(i) => le_bytes(i.as_raw(), f32::to_le_bytes),
            other => other.as_bytes().to_vec(),
        };
        Pixels { format: decoded.format.to_string(), width: image.width(), height: image.height(), color: format!("{:?}", image.color()), data, decode_ms }
    }

    /// The decoded single-frame image again, its size held to `limits`; an
    /// unknown format or sample layout, or a byte count that does not match
    /// the layout, is refused.
    pub fn into_decoded(self, limits: &Limits) -> Result<Decoded, DecodeError> {
        let Pixels { format, width: w, height: h, color, data, .. } = self;
        let bad = |detail: String| DecodeError::Corrupt { format: "decoded pixels", detail };
        let format = raster::FORMATS.iter().copied().find(|f| *f == format).ok_or_else(|| bad(format!("unknown image format {format:?}")))?;
        limits.check_size(w, h)?;
        let (samples, size) = match color.as_str() {
            "L8" => (1, 1),
            "La8" => (2, 1),
            "Rgb8" => (3, 1),
            "Rgba8" => (4, 1),
            "L16" => (1, 2),
            "La16" => (2, 2),
            "Rgb16" => (3, 2),
            "Rgba16" => (4, 2),
            "Rgb32F" => (3, 4),
            "Rgba32F" => (4, 4),
            other => return Err(bad(format!("unknown sample layout {other:?}"))),
        };
        if data.len() as u64 != u64::from(w) * u64::from(h) * samples * size {
            return Err(bad(format!("{} bytes do not make a {w} × {h} {color} image", data.len())));
        }
        let u16s = || data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect::<Vec<_>>();
        let f32s = || data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<_>>();
        // The length was checked, so every buffer fits its dimensions.
        let image = match color.as_str() {
            "L16" => image::ImageBuffer::from_raw(w, h, u16s()).map(DynamicImage::ImageLuma16),
            "La16" => image::ImageBuffer::from_raw(w, h, u16s()).map(DynamicImage::ImageLumaA16),
            "Rgb16" => image::ImageBuffer::from_raw(w, h, u16s()).map(DynamicImage::ImageRgb16),
            "Rgba16" => image::ImageBuffer::from_raw(w, h, u16s()).map(DynamicImage::ImageRgba16),
            "Rgb32F" => image::ImageBuffer::from_raw(w, h, f32s()).map(DynamicImage::ImageRgb32F),
            "Rgba32F" => image::ImageBuffer::from_raw(w, h, f32s()).map(DynamicImage::ImageRgba32F),
            "L8" => image::ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageLuma8),
            "La8" => image::ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageLumaA8),
            "Rgb8" => image::ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageRgb8),
            _ => image::ImageBuffer::from_raw(w, h, data).map(DynamicImage::ImageRgba8),
        };
        let image = image.ok_or_else(|| bad(format!("the samples do not make a {w} × {h} {color} image")))?;
        Ok(Decoded { image, format, frames: 1, frame: 0, dicom: None })
    }
}

pub(crate) fn unknown_format(bytes: &[u8]) -> DecodeError {
    let head = &bytes[..bytes.len().min(16)];
    let printable = |b: &u8| b.is_ascii_graphic() || b.is_ascii_whitespace();
    if bytes.iter().take(512).all(printable) {
        let start: String = String::from_utf8_lossy(head).chars().take(16).collect();
        return DecodeError::Text { start };
    }
    let magic = head.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    DecodeError::UnknownFormat { magic }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_carry_every_sample_layout_unchanged() {
        let (w, h) = (3u32, 2u32);
        let n = (w * h) as usize;
        let u8s = |c: usize| (0..n * c).map(|i| (i * 37 % 256) as u8).collect::<Vec<_>>();
        let u16s = |c: usize| (0..n * c).map(|i| (i * 4099 % 65536) as u16).collect::<Vec<_>>();
        let f32s = |c: usize| (0..n * c).map(|i| i as f32 * 0.37 - 1.0).collect::<Vec<_>>();
        let images = [
            DynamicImage::ImageLuma8(image::ImageBuffer::from_raw(w, h, u8s(1)).unwrap()),
            DynamicImage::ImageLumaA8(image::ImageBuffer::from_raw(w, h, u8s(2)).unwrap()),
            DynamicImage::ImageRgb8(image::ImageBuffer::from_raw(w, h, u8s(3)).unwrap()),
            DynamicImage::ImageRgba8(image::ImageBuffer::from_raw(w, h, u8s(4)).unwrap()),
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, u16s(1)).unwrap()),
            DynamicImage::ImageLumaA16(image::ImageBuffer::from_raw(w, h, u16s(2)).unwrap()),
            DynamicImage::ImageRgb16(image::ImageBuffer::from_raw(w, h, u16s(3)).unwrap()),
            DynamicImage::ImageRgba16(image::ImageBuffer::from_raw(w, h, u16s(4)).unwrap()),
            DynamicImage::ImageRgb32F(image::ImageBuffer::from_raw(w, h, f32s(3)).unwrap()),
            DynamicImage::ImageRgba32F(image::ImageBuffer::from_raw(w, h, f32s(4)).unwrap()),
        ];
        for image in images {
            let decoded = Decoded { image: image.clone(), format: "TIFF", frames: 1, frame: 0, dicom: None };
            let pixels = Pixels::of(&decoded, 1.5);
            assert_eq!((pixels.format.as_str(), pixels.decode_ms), ("TIFF", 1.5));
            let limits = Limits { min_side: 1, ..Limits::default() };
            assert_eq!(pixels.clone().into_decoded(&limits).unwrap().image, image, "{}", pixels.color);
            let short = Pixels { data: pixels.data[1..].to_vec(), ..pixels.clone() };
            assert!(short.into_decoded(&limits).unwrap_err().to_string().contains("do not make a 3 × 2"), "{}", pixels.color);
            assert!(matches!(pixels.into_decoded(&Limits::default()), Err(DecodeError::TooSmall { .. })));
        }
        let odd = Pixels { format: "TIFF".into(), width: 1, height: 1, color: "Cmyk8".into(), data: vec![0; 4], decode_ms: 0.0 };
        let limits = Limits { min_side: 1, ..Limits::default() };
        assert!(odd.clone().into_decoded(&limits).unwrap_err().to_string().contains("unknown sample layout"));
        let gif = Pixels { format: "GIF".into(), color: "L8".into(), data: vec![0], ..odd };
        assert!(gif.into_decoded(&limits).unwrap_err().to_string().contains("unknown image format"));
    }

    #[test]
    fn hex_magic_is_reported_for_binary_garbage() {
        let err = decode(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("00 01 02 03 04 05 06 07"), "{err}");
    }
}
