//! One frame's stored sample values, from native pixel data (PS3.5 §8.1),
//! RLE Lossless (PS3.5 Annex G) or JPEG (PS3.5 §8.2.1, A.4) fragments.
//!
//! Every size is checked against the image pixel module's Rows, Columns,
//! Samples per Pixel and Bits Allocated before a buffer is made, and a
//! compressed frame must decode to exactly that size.

use super::syntax::{self, Compression, Syntax};
use crate::decode::DecodeError;
use std::borrow::Cow;

/// What the image pixel module (PS3.3 C.7.6.3) says about the pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub rows: u32,
    pub columns: u32,
    pub samples: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub signed: bool,
    /// Planar Configuration 1: all of one colour plane, then the next.
    pub planar: bool,
    pub frames: u32,
}

impl Geometry {
    pub(crate) fn pixels(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    fn frame_samples(&self) -> usize {
        self.pixels() * usize::from(self.samples)
    }

    fn bytes_per_sample(&self) -> usize {
        usize::from(self.bits_allocated / 8)
    }
}

/// The Pixel Data element's value as dicom-rs holds it.
pub(crate) enum Source<'a> {
    /// OB, or any native pixel data in a little endian file.
    Bytes { data: &'a [u8], big_endian: bool },
    /// OW read as 16-bit words (already in native order).
    Words(&'a [u16]),
    /// Encapsulated: basic offset table and fragments.
    Fragments { offsets: &'a [u32], fragments: &'a [Vec<u8>] },
}

/// One frame's samples as stored (before masking to Bits Stored), pixel by
/// pixel with the colour samples of a pixel together.
pub(crate) fn frame(
    source: &Source,
    syntax: &Syntax,
    geo: &Geometry,
    index: u32,
    photometric_rgb: bool,
) -> Result<Vec<u16>, DecodeError> {
    let compression = syntax.compression;
    let samples = match (source, compression) {
        (Source::Bytes { data, big_endian }, Compression::Native) => native_bytes(data, *big_endian, geo, index)?,
        (Source::Words(words), Compression::Native) => native_words(words, geo, index)?,
        (Source::Fragments { offsets, fragments }, Compression::Rle) => {
            rle(&frame_bytes(fragments, offsets, geo.frames, index, false)?, geo)?
        }
        (Source::Fragments { offsets, fragments }, Compression::Jpeg) => {
            jpeg(&frame_bytes(fragments, offsets, geo.frames, index, true)?, syntax, geo, photometric_rgb)?
        }
        (Source::Fragments { .. }, Compression::Native) => {
            return Err(corrupt("the pixel data is encapsulated (compressed) but the transfer syntax says it is not"))
        }
        (_, _) => return Err(corrupt("the pixel data is not encapsulated but the transfer syntax says it is compressed")),
    };
    Ok(if geo.planar && geo.samples > 1 && compression == Compression::Native { interleave(&samples, geo) } else { samples })
}

fn corrupt(detail: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt { format: "DICOM", detail: detail.into() }
}

fn short_pixel_data(have: usize, geo: &Geometry) -> DecodeError {
    corrupt(format!(
        "Pixel Data holds {have} bytes, fewer than {} frame(s) of {} × {} × {} samples at {} bits need",
        geo.frames, geo.columns, geo.rows, geo.samples, geo.bits_allocated
    ))
}

fn native_bytes(data: &[u8], big_endian: bool, geo: &Geometry, index: u32) -> Result<Vec<u16>, DecodeError> {
    let n = geo.frame_samples();
    let frame_len = n * geo.bytes_per_sample();
    let start = frame_len * index as usize;
    let bytes = data.get(start..start + frame_len).ok_or_else(|| short_pixel_data(data.len(), geo))?;
    Ok(match (geo.bits_allocated, big_endian) {
        (8, _) => bytes.iter().map(|&b| u16::from(b)).collect(),
        (_, false) => bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
        (_, true) => bytes.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect(),
    })
}

fn native_words(words: &[u16], geo: &Geometry, index: u32) -> Result<Vec<u16>, DecodeError> {
    let n = geo.frame_samples();
    if geo.bits_allocated == 16 {
        let start = n * index as usize;
        let frame = words.get(start..start + n).ok_or_else(|| short_pixel_data(words.len() * 2, geo))?;
        return Ok(frame.to_vec());
    }
    // 8-bit samples in an OW value: the words' little endian bytes are the
    // byte stream in both byte orders (PS3.5 §8.1.1).
    let start = n * index as usize;
    if words.len() * 2 < start + n {
        return Err(short_pixel_data(words.len() * 2, geo));
    }
    Ok((start..start + n).map(|i| u16::from(words[i / 2].to_le_bytes()[i % 2])).collect())
}

/// Planar configuration 1 (RRR…GGG…BBB…) to pixel-interleaved.
fn interleave(planes: &[u16], geo: &Geometry) -> Vec<u16> {
    let (n, s) = (geo.pixels(), usize::from(geo.samples));
    (0..n * s).map(|i| planes[(i % s) * n + i / s]).collect()
}

/// The encoded bytes of frame `index` (PS3.5 A.4): one fragment per frame,
/// or grouped by the basic offset table, or (JPEG only) split where a
/// fragment starts with a start-of-image marker.
fn frame_bytes<'a>(
    fragments: &'a [Vec<u8>],
    offsets: &[u32],
    frames: u32,
    index: u32,
    jpeg: bool,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let i = index as usize;
    if fragments.is_empty() {
        return Err(corrupt("the encapsulated pixel data has no fragments"));
    }
    if frames == 1 {
        return Ok(if fragments.len() == 1 { Cow::Borrowed(&fragments[0]) } else { Cow::Owned(fragments.concat()) });
    }
    if fragments.len() == frames as usize {
        return Ok(Cow::Borrowed(&fragments[i]));
    }
    let groups: Vec<usize> = if offsets.len() == frames as usize {
        // Fragment k starts at the sum of the previous items' sizes (8-byte header + value).
        let mut starts = Vec::with_capacity(fragments.len());
        let mut at = 0u64;
        for f in fragments {
            starts.push(at);
            at += 8 + f.len() as u64;
        }
        starts.iter().map(|&s| offsets.iter().filter(|&&o| u64::from(o) <= s).count().saturating_sub(1)).collect()
    } else if jpeg {
        let mut frame = 0usize;
        fragments
            .iter()
            .enumerate()
            .map(|(k, f)| {
                if k > 0 && f.starts_with(&[0xFF, 0xD8]) {
                    frame += 1;
                }
                frame
            })
            .collect()
    } else {
        return Err(corrupt(format!(
            "{} fragments for {frames} frames and no offset table: which fragments make up a frame is unknown",
            fragments.len()
        )));
    };
    let parts: Vec<&[u8]> = fragments.iter().zip(&groups).filter(|(_, &g)| g == i).map(|(f, _)| f.as_slice()).collect();
    if parts.is_empty() {
        return Err(corrupt(format!("frame {index} has no pixel data fragments")));
    }
    Ok(Cow::Owned(parts.concat()))
}

/// RLE Lossless (PS3.5 Annex G): a 64-byte header with the number of
/// segments and their offsets, then one PackBits segment per byte plane,
/// most significant byte first, sample by sample.
fn rle(frame: &[u8], geo: &Geometry) -> Result<Vec<u16>, DecodeError> {
    let planes = usize::from(geo.samples) * geo.bytes_per_sample();
    let u32_at = |at: usize| frame.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let count = u32_at(0).ok_or_else(|| corrupt("the RLE frame is shorter than its 64-byte header"))?;
    if count != planes {
        return Err(corrupt(format!("the RLE frame has {count} segments where {planes} are needed")));
    }
    let mut starts = Vec::with_capacity(count + 1);
    for k in 0..count {
        starts.push(u32_at(4 + 4 * k).ok_or_else(|| corrupt("the RLE frame is shorter than its 64-byte header"))?);
    }
    starts.push(frame.len());
    let n = geo.pixels();
    let mut out = vec![0u16; n * usize::from(geo.samples)];
    for k in 0..count {
        let (a, b) = (starts[k], starts[k + 1]);
        if a < 64 || a > b || b > frame.len() {
            return Err(corrupt(format!("the RLE segment offsets are out of order or outside the frame (segment {k})")));
        }
        let plane = unpack_bits(&frame[a..b], n).ok_or_else(|| corrupt(format!("RLE segment {k} holds fewer than {n} bytes")))?;
        let (sample, byte) = (k / geo.bytes_per_sample(), k % geo.bytes_per_sample());
        let shift = 8 * (geo.bytes_per_sample() - 1 - byte);
        let s = usize::from(geo.samples);
        for (p, &v) in plane.iter().enumerate() {
            out[p * s + sample] |= u16::from(v) << shift;
        }
    }
    Ok(out)
}

/// PackBits (PS3.5 G.3.1): header byte n ≥ 0 copies the next n + 1 bytes,
/// −127 ≤ n ≤ −1 repeats the next byte 1 − n times, −128 does nothing.
/// Returns the first `n` bytes, or None when the segment makes fewer.
fn unpack_bits(segment: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n && i < segment.len() {
        let h = segment[i] as i8;
        i += 1;
        if h >= 0 {
            let end = (i + h as usize + 1).min(segment.len());
            out.extend_from_slice(&segment[i..end]);
            i = end;
        } else if h != -128 {
            let &b = segment.get(i)?;
            i += 1;
            out.resize(out.len() + (1 - isize::from(h)) as usize, b);
        }
    }
    (out.len() >= n).then(|| {
        out.truncate(n);
        out
    })
}

/// A JPEG frame through jpeg-decoder, whose size and component count must
/// match the DICOM header.
fn jpeg(frame: &[u8], syntax: &Syntax, geo: &Geometry, photometric_rgb: bool) -> Result<Vec<u16>, DecodeError> {
    use jpeg_decoder::{ColorTransform, Decoder, Error, PixelFormat, UnsupportedFeature};
    let jpeg_error = |e: Error| match e {
        // jpeg-decoder reads 12-bit samples only in lossless JPEG.
        Error::Unsupported(UnsupportedFeature::SamplePrecision(bits)) => {
            syntax::unsupported(syntax.uid, Some(&format!("with {bits}-bit samples")))
        }
        Error::Unsupported(feature) => syntax::unsupported(syntax.uid, Some(&format!("with {feature:?}"))),
        e => corrupt(format!("the JPEG frame cannot be decoded: {e}")),
    };
    let mut decoder = Decoder::new(frame);
    let expected = geo.frame_samples() * geo.bytes_per_sample();
    decoder.set_max_decoding_buffer_size(expected.max(1 << 16));
    if photometric_rgb && !states_ycbcr(frame) {
        // Photometric Interpretation RGB: the components are R, G, B as
        // they are (PS3.5 §8.2.1), unless the stream itself says YCbCr.
        decoder.set_color_transform(ColorTransform::RGB);
    }
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| corrupt("the JPEG frame has no frame header"))?;
    if (u32::from(info.width), u32::from(info.height)) != (geo.columns, geo.rows) {
        return Err(corrupt(format!(
            "the JPEG frame is {} × {} pixels but the DICOM header says {} × {}",
            info.width, info.height, geo.columns, geo.rows
        )));
    }
    let (components, wide) = match info.pixel_format {
        PixelFormat::L8 => (1, false),
        PixelFormat::L16 => (1, true),
        PixelFormat::RGB24 => (3, false),
        PixelFormat::CMYK32 => (4, false),
    };
    if components != geo.samples {
        return Err(corrupt(format!("the JPEG frame has {components} components but Samples per Pixel is {}", geo.samples)));
    }
    if wide && geo.bits_allocated == 8 {
        return Err(corrupt("the JPEG frame has more than 8 bits per sample but Bits Allocated is 8"));
    }
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let out: Vec<u16> = if wide {
        // jpeg-decoder gives 16-bit samples in native byte order.
        pixels.chunks_exact(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect()
    } else {
        pixels.iter().map(|&b| u16::from(b)).collect()
    };
    if out.len() != geo.frame_samples() {
        return Err(corrupt(format!("the JPEG frame decoded to {} samples, not {}", out.len(), geo.frame_samples())));
    }
    Ok(out)
}

/// Whether a JPEG stream says its components are YCbCr: a JFIF (APP0)
/// marker, or an Adobe (APP14) marker with colour transform 1.
fn states_ycbcr(jpeg: &[u8]) -> bool {
    let head = &jpeg[..jpeg.len().min(4096)];
    let jfif = head.windows(8).any(|w| w[..2] == [0xFF, 0xE0] && &w[4..8] == b"JFIF");
    let adobe = head.windows(16).any(|w| w[..2] == [0xFF, 0xEE] && u16::from_be_bytes([w[2], w[3]]) >= 14 && &w[4..9] == b"Adobe" && w[15] == 1);
    jfif || adobe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(rows: u32, columns: u32, samples: u16, bits: u16, frames: u32) -> Geometry {
        Geometry {
            rows,
            columns,
            samples,
            bits_allocated: bits,
            bits_stored: bits,
            high_bit: bits - 1,
            signed: false,
            planar: false,
            frames,
        }
    }

    #[test]
    fn packbits_literal_runs_and_noops() {
        // 2 literals, a run of 3 × 7, a no-op, 1 literal.
        let seg = [1, 10, 11, (-2i8) as u8, 7, 0x80, 0, 12];
        assert_eq!(unpack_bits(&seg, 6), Some(vec![10, 11, 7, 7, 7, 12]));
        assert_eq!(unpack_bits(&seg, 7), None);
        // A literal run cut short by the end of the segment does not panic.
        assert_eq!(unpack_bits(&[5, 1, 2], 3), None);
        assert_eq!(unpack_bits(&[(-5i8) as u8], 3), None);
    }

    #[test]
    fn rle_frame_with_two_byte_planes() {
        // 1 × 2 pixels of 16 bits: 0x0102, 0x0304.
        let mut frame = vec![0u8; 64];
        frame[0] = 2;
        frame[4] = 64;
        frame[8] = 67;
        frame.extend_from_slice(&[1, 0x01, 0x03]); // high bytes
        frame.extend_from_slice(&[1, 0x02, 0x04]); // low bytes
        assert_eq!(rle(&frame, &geo(1, 2, 1, 16, 1)).unwrap(), vec![0x0102, 0x0304]);
        frame[0] = 3;
        assert!(rle(&frame, &geo(1, 2, 1, 16, 1)).is_err());
        assert!(rle(&frame[..10], &geo(1, 2, 1, 16, 1)).is_err());
    }

    #[test]
    fn native_frames_and_planes() {
        let g = geo(1, 2, 1, 16, 2);
        let data = [1, 0, 2, 0, 3, 0, 4, 0];
        assert_eq!(native_bytes(&data, false, &g, 1).unwrap(), vec![3, 4]);
        assert!(native_bytes(&data[..6], false, &g, 1).is_err());
        assert_eq!(native_words(&[0x0201, 0x0403], &geo(1, 2, 1, 8, 2), 1).unwrap(), vec![3, 4]);
        let rgb = Geometry { planar: true, ..geo(1, 2, 3, 8, 1) };
        assert_eq!(interleave(&[1, 2, 3, 4, 5, 6], &rgb), vec![1, 3, 5, 2, 4, 6]);
    }

    #[test]
    fn fragments_by_offset_table_and_by_start_of_image() {
        let frags = vec![vec![0xFF, 0xD8, 1, 2], vec![3, 4], vec![0xFF, 0xD8, 5, 6]];
        // Offsets: frame 0 at 0, frame 1 at the third fragment (8+4 + 8+2 = 22).
        assert_eq!(&*frame_bytes(&frags, &[0, 22], 2, 1, false).unwrap(), &[0xFF, 0xD8, 5, 6]);
        assert_eq!(&*frame_bytes(&frags, &[], 2, 0, true).unwrap(), &[0xFF, 0xD8, 1, 2, 3, 4]);
        assert!(frame_bytes(&frags, &[], 2, 0, false).is_err());
        assert!(frame_bytes(&frags, &[], 4, 3, true).is_err());
    }

    #[test]
    fn jfif_and_adobe_transform_1_say_ycbcr() {
        let adobe = |len: u8, transform: u8| {
            let mut j = vec![0xFF, 0xD8, 0xFF, 0xEE, 0, len];
            j.extend_from_slice(b"Adobe\0\x64\0\0\0\0");
            j.push(transform);
            j.extend_from_slice(&[0xFF, 0xDB]);
            j
        };
        assert!(states_ycbcr(&adobe(14, 1)));
        assert!(!states_ycbcr(&adobe(14, 0)));
        // A short APP14 (no transform byte) says nothing.
        assert!(!states_ycbcr(&adobe(12, 1)));
        assert!(states_ycbcr(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01"));
        assert!(!states_ycbcr(&[0xFF, 0xD8, 0xFF, 0xDB]));
    }
}
