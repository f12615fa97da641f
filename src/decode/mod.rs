//! Image decoding with budgets.
//!
//! Reads JPEG (baseline and progressive), PNG (1–16 bit; grey, grey+alpha, RGB,
//! RGBA, palette), BMP, TIFF and WebP through the `image` crate with only those
//! codecs compiled in. The decoded image keeps its sample depth (16-bit stays
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
    fn hex_magic_is_reported_for_binary_garbage() {
        let err = decode(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("00 01 02 03 04 05 06 07"), "{err}");
    }
}
