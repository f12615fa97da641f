//! The raster formats (JPEG, PNG, BMP, TIFF, WebP) through the `image`
//! crate, held to the [`Limits`] before any pixel buffer is allocated.

use super::{unknown_format, DecodeError, Decoded, Limits};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

/// Decodes a raster image (`frame` must be 0 or None: one frame only).
pub(super) fn decode(bytes: &[u8], limits: &Limits, frame: Option<u32>) -> Result<Decoded, DecodeError> {
    let format = image::guess_format(bytes).map_err(|_| unknown_format(bytes))?;
    let name = format_name(format);
    if name == "other" {
        return Err(unknown_format(bytes));
    }
    if !cfg!(feature = "all-formats") && matches!(format, ImageFormat::Tiff | ImageFormat::WebP) {
        return Err(DecodeError::OtherEngine { format: name });
    }
    let corrupt = |e: image::ImageError| DecodeError::Corrupt { format: name, detail: e.to_string() };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // zune-jpeg pads a truncated scan with grey instead of failing: a half
        // image would be screened as if it were whole, so refuse it here.
        return Err(DecodeError::Corrupt { format: name, detail: "the end-of-image marker is missing".into() });
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    limits.check_size(width, height)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    if let Some(frame @ 1..) = frame {
        return Err(DecodeError::FrameOutOfRange { frame, frames: 1 });
    }
    Ok(Decoded { image, format: name, frames: 1, frame: 0, dicom: None })
}

/// The names of the raster formats, as [`Decoded::format`] gives them.
pub(super) const FORMATS: [&str; 5] = ["JPEG", "PNG", "BMP", "TIFF", "WebP"];

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => FORMATS[0],
        ImageFormat::Png => FORMATS[1],
        ImageFormat::Bmp => FORMATS[2],
        ImageFormat::Tiff => FORMATS[3],
        ImageFormat::WebP => FORMATS[4],
        _ => "other",
    }
}

/// A JPEG is complete when its last marker is EOI (FF D9); some cameras
/// append a few bytes of padding after it, so look in the last 1 KiB.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eoi_check_accepts_trailing_padding() {
        let mut jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        assert!(jpeg_is_complete(&jpeg));
        jpeg.extend_from_slice(&[0; 100]);
        assert!(jpeg_is_complete(&jpeg));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 1, 2, 3]));
    }
}
