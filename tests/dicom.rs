//! DICOM input: pydicom's test files (fetched by `scripts/setup test` into
//! .cache/dicom, never committed) decode to the values pydicom gives, every
//! lossless encoding of MR_small to the same image, and every bad or
//! unsupported file to a specific error that never quotes the patient.

mod common;

use image::DynamicImage;
use mriscreen::decode::{decode, decode_frame, DecodeError, Decoded, Limits};
use mriscreen::decode::dicom::{DicomSummary, Window, WindowSource};
use mriscreen::{block_on, Classifier, LoadOptions};
use std::path::PathBuf;

fn file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/dicom").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup test to fetch the DICOM test files", path.display()))
}

fn ok(name: &str) -> Decoded {
    decode(&file(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes, &Limits::default()).expect_err("must be refused")
}

fn grey16(d: &Decoded) -> &[u16] {
    d.image.as_luma16().unwrap_or_else(|| panic!("expected 16-bit grey, got {:?}", d.image.color())).as_raw()
}

fn summary(d: &Decoded) -> &DicomSummary {
    d.dicom.as_ref().expect("a DICOM summary")
}

/// Numbers from tests/golden/dicom_ref.py (pydicom + numpy, see there):
/// the sum of the 16-bit output, the pixels at (row, column) (0, 0),
/// (rows/2, columns/2) and (10, 50), and the window (centre, width).
struct Reference {
    sum: u64,
    probes: [u16; 3],
    window: (f64, f64),
}

// tests/golden/dicom_ref.py output:
// MR_small.dcm: stored min 127 max 2145
const MR_SMALL: Reference = Reference { sum: 119016505, probes: [45288, 15656, 53444], window: (600.0, 1600.0) };
// emri_small.dcm frame 5: stored min 0 max 467 (all frames)
const EMRI_MIDDLE: Reference = Reference { sum: 64135356, probes: [17975, 11796, 2809], window: (178.0, 350.0) };
// emri_small.dcm frame 0
const EMRI_FIRST: Reference = Reference { sum: 105401933, probes: [4956, 19459, 41854], window: (182.5, 357.0) };
// CT_small.dcm: stored min 128 max 2191, rescale intercept −1024
const CT_SMALL: Reference = Reference { sum: 483675951, probes: [478, 65535, 51122], window: (-38.0, 1646.0) };
// JPEG-LL.dcm: stored min 0 max 278
const JPEG_LL: Reference = Reference { sum: 2078227020, probes: [0, 7607, 0], window: (56.0, 112.0) };
// JPGLosslessP14SV1_1s_1f_8b.dcm: stored min 0 max 255
const JPEG_LOSSLESS_8BIT: Reference = Reference { sum: 3512318251, probes: [0, 3885, 0], window: (127.0, 254.0) };
// image_dfl.dcm: stored min 0 max 255
const DEFLATED: Reference = Reference { sum: 8563930816, probes: [54741, 16705, 63736], window: (127.5, 255.0) };
// SC_rgb_rle.dcm and SC_rgb_jpeg_gdcm.dcm: RGB sum 3831000
const SC_RGB_SUM: u64 = 3831000;

fn check(d: &Decoded, r: &Reference, source: WindowSource, what: &str) {
    let px = grey16(d);
    let (w, h) = (d.image.width() as usize, d.image.height() as usize);
    assert_eq!(px.iter().map(|&v| u64::from(v)).sum::<u64>(), r.sum, "{what}: sum");
    let probes = [px[0], px[(h / 2) * w + w / 2], px[10 * w + 50]];
    assert_eq!(probes, r.probes, "{what}: probes");
    let window = summary(d).window.expect("a window");
    assert_eq!(window, Window { center: r.window.0, width: r.window.1, source }, "{what}");
}

#[test]
fn mr_small_matches_pydicom() {
    let d = ok("MR_small.dcm");
    assert_eq!((d.format, d.frames, d.frame), ("DICOM", 1, 0));
    assert_eq!((d.image.width(), d.image.height()), (64, 64));
    check(&d, &MR_SMALL, WindowSource::File, "MR_small");
    let s = summary(&d);
    assert_eq!(s.transfer_syntax, "Explicit VR Little Endian");
    assert_eq!(s.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_eq!(s.modality.as_deref(), Some("MR"));
    assert_eq!(s.photometric_interpretation, "MONOCHROME2");
    assert_eq!((s.rows, s.columns, s.frames, s.bits_allocated, s.bits_stored, s.signed), (64, 64, 1, 16, 16, true));
    assert!(s.has_file_meta);
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["window"]["source"], "file");
}

#[test]
fn every_lossless_mr_small_variant_decodes_to_the_same_image() {
    let reference = ok("MR_small.dcm");
    for (name, syntax) in [
        ("MR_small_implicit.dcm", "Implicit VR Little Endian"),
        ("MR_small_bigendian.dcm", "Explicit VR Big Endian"),
        ("MR_small_expb.dcm", "Explicit VR Big Endian"),
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_padded.dcm", "Explicit VR Little Endian"),
    ] {
        let d = ok(name);
        assert_eq!(summary(&d).transfer_syntax, syntax, "{name}");
        assert_eq!(grey16(&d), grey16(&reference), "{name}: pixels differ from MR_small.dcm");
        assert_eq!(summary(&d).window, summary(&reference).window, "{name}");
    }
}

#[test]
fn jpeg_ls_jpeg_2000_and_12_bit_jpeg_are_refused_by_name() {
    for (name, syntax, uid) in [
        ("MR_small_jp2klossless.dcm", "JPEG 2000 Image Compression (Lossless Only)", "1.2.840.10008.1.2.4.90"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression", "1.2.840.10008.1.2.4.80"),
        ("JPEG2000.dcm", "JPEG 2000 Image Compression", "1.2.840.10008.1.2.4.91"),
        ("JPGExtended.dcm", "with 12-bit samples", "1.2.840.10008.1.2.4.51"),
    ] {
        let e = err(&file(name));
        assert!(matches!(e, DecodeError::DicomUnsupportedSyntax { .. }), "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(syntax) && msg.contains(uid), "{name}: {msg}");
        assert!(msg.contains("re-export"), "{name}: {msg}");
    }
}

#[test]
fn multi_frame_defaults_to_the_middle_frame_and_reaches_any_frame() {
    let bytes = file("emri_small.dcm");
    let d = decode(&bytes, &Limits::default()).unwrap();
    assert_eq!((d.frames, d.frame, summary(&d).frames), (10, 5, 10));
    check(&d, &EMRI_MIDDLE, WindowSource::Percentiles, "emri_small frame 5");
    let first = decode_frame(&bytes, &Limits::default(), Some(0)).unwrap();
    assert_eq!(first.frame, 0);
    check(&first, &EMRI_FIRST, WindowSource::Percentiles, "emri_small frame 0");

    let e = decode_frame(&bytes, &Limits::default(), Some(10)).unwrap_err();
    assert!(matches!(e, DecodeError::FrameOutOfRange { frame: 10, frames: 10 }), "{e}");
    assert!(e.to_string().contains("has 10 frame(s), numbered 0 to 9"), "{e}");

    // The same frames from RLE (one fragment per frame) and big endian.
    for name in ["emri_small_RLE.dcm", "emri_small_big_endian.dcm"] {
        for frame in [0, 5, 9] {
            let a = decode_frame(&bytes, &Limits::default(), Some(frame)).unwrap();
            let b = decode_frame(&file(name), &Limits::default(), Some(frame)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(grey16(&a), grey16(&b), "{name} frame {frame}");
        }
    }

    // The multi-frame file inside the pydicom wheel: two RGB frames.
    let two = file("SC_rgb_rle_2frame.dcm");
    let d = decode(&two, &Limits::default()).unwrap();
    assert_eq!((d.frames, d.frame), (2, 1));
    let frame0 = decode_frame(&two, &Limits::default(), Some(0)).unwrap();
    assert_eq!(frame0.image, ok("SC_rgb_rle.dcm").image);
    assert_ne!(frame0.image, d.image);
}

#[test]
fn lossless_jpeg_matches_pydicom() {
    let d = ok("JPEG-LL.dcm");
    assert_eq!((d.image.width(), d.image.height()), (256, 1024));
    check(&d, &JPEG_LL, WindowSource::Percentiles, "JPEG-LL (16-bit signed, process 14 SV1)");
    check(&ok("JPGLosslessP14SV1_1s_1f_8b.dcm"), &JPEG_LOSSLESS_8BIT, WindowSource::File, "8-bit lossless JPEG");
    // RGB lossless JPEG is bit-exact against RLE.
    let jpeg = ok("SC_rgb_jpeg_gdcm.dcm");
    let rle = ok("SC_rgb_rle.dcm");
    let rgb = jpeg.image.as_rgb8().expect("8-bit RGB stays RGB");
    assert_eq!(rgb.as_raw().iter().map(|&v| u64::from(v)).sum::<u64>(), SC_RGB_SUM);
    assert_eq!(jpeg.image, rle.image);
    assert!(summary(&jpeg).window.is_none());
}

#[test]
fn baseline_jpeg_is_close_to_the_lossless_original() {
    let original = ok("SC_rgb_rle.dcm").image.to_rgb8();
    for name in ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cr.dcm"] {
        let d = ok(name);
        let lossy = d.image.to_rgb8();
        let mean_abs: f64 = original.as_raw().iter().zip(lossy.as_raw()).map(|(&a, &b)| f64::from(a.abs_diff(b))).sum::<f64>()
            / original.as_raw().len() as f64;
        assert!(mean_abs < 3.0, "{name}: mean absolute difference {mean_abs}");
    }
}

#[test]
fn rgb_jpeg_without_a_ycbcr_marker_is_not_colour_converted() {
    // pydicom (libjpeg) decodes both to near-white grey, 244 in every
    // channel. SC_rgb_jpeg.dcm also declares explicit VR but is written in
    // implicit VR, as some writers do.
    for name in ["SC_rgb_jpeg.dcm", "SC_jpeg_no_color_transform.dcm"] {
        let d = ok(name);
        assert_eq!(summary(&d).transfer_syntax, "JPEG Baseline (Process 1)", "{name}");
        let rgb = d.image.as_rgb8().expect("8-bit RGB");
        for c in 0..3 {
            let mean = rgb.pixels().map(|p| f64::from(p[c])).sum::<f64>() / f64::from(rgb.width() * rgb.height());
            assert!((mean - 244.0).abs() < 1.0, "{name}: channel {c} mean {mean}");
        }
    }
}

#[test]
fn deflated_and_rescaled_signed_data_match_pydicom() {
    let d = ok("image_dfl.dcm");
    assert_eq!(summary(&d).transfer_syntax, "Deflated Explicit VR Little Endian");
    check(&d, &DEFLATED, WindowSource::Percentiles, "image_dfl");
    check(&ok("CT_small.dcm"), &CT_SMALL, WindowSource::Percentiles, "CT_small");
}

#[test]
fn truncated_files_are_refused_without_panicking() {
    let full = file("MR_small.dcm");
    for cut in [1, 100, 131, 132, 136, 140, 200, 400, 1000, full.len() / 2, full.len() - 100, full.len() - 1] {
        assert!(decode(&full[..cut], &Limits::default()).is_err(), "cut at {cut} accepted");
    }
    for cut in [200, 1000, full.len() - 100] {
        let e = err(&full[..cut]);
        assert!(matches!(e, DecodeError::Corrupt { format: "DICOM", .. }), "cut at {cut}: {e}");
    }
    let e = err(&file("MR_truncated.dcm"));
    assert!(matches!(e, DecodeError::Corrupt { format: "DICOM", .. }), "{e}");
    assert!(e.to_string().contains("truncated or corrupt"), "{e}");
    // Zero bytes, and a preamble with nothing after it.
    assert!(matches!(err(&[]), DecodeError::Empty));
    assert!(matches!(err(&full[..132]), DecodeError::Corrupt { format: "DICOM", .. }));
}

/// Offset of the value of the explicit VR little endian element `tag` with
/// a 16-bit length (the first match in the file).
fn value_at(bytes: &[u8], tag: (u16, u16), vr: &[u8; 2]) -> (usize, usize) {
    let mut head = [tag.0.to_le_bytes(), tag.1.to_le_bytes()].concat();
    head.extend_from_slice(vr);
    let at = bytes.windows(6).position(|w| w == head.as_slice()).unwrap_or_else(|| panic!("no {tag:04x?}"));
    (at + 8, usize::from(u16::from_le_bytes([bytes[at + 6], bytes[at + 7]])))
}

fn patched(name: &str, tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut bytes = file(name);
    let (at, len) = value_at(&bytes, tag, vr);
    assert_eq!(len, value.len(), "patch must keep the length");
    bytes[at..at + len].copy_from_slice(value);
    bytes
}

#[test]
fn huge_declared_sizes_are_refused_before_decoding() {
    let mut bytes = patched("MR_small.dcm", (0x0028, 0x0010), b"US", &u16::MAX.to_le_bytes());
    let (at, _) = value_at(&bytes, (0x0028, 0x0011), b"US");
    bytes[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    match err(&bytes) {
        DecodeError::DicomTooManyPixels { rows, columns, frames, .. } => assert_eq!((rows, columns, frames), (65535, 65535, 1)),
        e => panic!("expected DicomTooManyPixels, got {e}"),
    }

    // Ten frames of 64 × 64 against a budget of nine.
    let limits = Limits { max_pixels: 64 * 64 * 9, ..Limits::default() };
    let e = decode(&file("emri_small.dcm"), &limits).unwrap_err();
    assert!(matches!(e, DecodeError::DicomTooManyPixels { frames: 10, .. }), "{e}");
    assert!(e.to_string().contains("10 frame(s) of 64 × 64"), "{e}");

    // Pixel Data claiming 4 GB in a 10 kB file.
    let mut bytes = file("MR_small.dcm");
    let at = bytes.windows(6).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W']).expect("Pixel Data");
    bytes[at + 8..at + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let e = err(&bytes);
    assert!(e.to_string().contains("declares 4294967280 bytes"), "{e}");
}

#[test]
fn files_without_a_usable_image_are_explained() {
    let e = err(&file("rtplan.dcm"));
    assert!(matches!(e, DecodeError::DicomNoImage { .. }), "{e}");
    assert!(e.to_string().contains("RTPLAN, no Pixel Data"), "{e}");
    // A bare data set (no preamble, no meta group) is still recognised.
    let e = err(&file("ExplVR_LitEndNoMeta.dcm"));
    assert!(matches!(e, DecodeError::DicomNoImage { .. }), "{e}");
    // 32-bit dose grids (10 × 10: lower the minimum side to get past it).
    let limits = Limits { min_side: 1, ..Limits::default() };
    let e = decode(&file("rtdose.dcm"), &limits).unwrap_err();
    assert!(matches!(e, DecodeError::DicomUnsupportedImage { .. }), "{e}");
    assert!(e.to_string().contains("32 bits allocated"), "{e}");
    let e = err(&patched("MR_small.dcm", (0x0028, 0x0100), b"US", &12u16.to_le_bytes()));
    assert!(e.to_string().contains("12 bits allocated"), "{e}");
}

#[test]
fn monochrome1_is_inverted() {
    let normal = ok("MR_small.dcm");
    let bytes = patched("MR_small.dcm", (0x0028, 0x0004), b"CS", b"MONOCHROME1 ");
    let inverted = decode(&bytes, &Limits::default()).unwrap();
    assert_eq!(summary(&inverted).photometric_interpretation, "MONOCHROME1");
    for (a, b) in grey16(&normal).iter().zip(grey16(&inverted)) {
        assert_eq!(u32::from(*a) + u32::from(*b), 65535);
    }
}

#[test]
fn ordinary_images_have_one_frame() {
    let png = common::png(common::phantom(32, 32));
    let d = decode(&png, &Limits::default()).unwrap();
    assert_eq!((d.frames, d.frame, d.dicom.is_none()), (1, 0, true));
    assert!(decode_frame(&png, &Limits::default(), Some(0)).is_ok());
    let e = decode_frame(&png, &Limits::default(), Some(1)).unwrap_err();
    assert!(matches!(e, DecodeError::FrameOutOfRange { frame: 1, frames: 1 }), "{e}");
}

#[test]
fn identifying_values_never_appear_in_results_or_errors() {
    let bytes = file("MR_small.dcm");
    // Patient's Name, ID and Birth Date as the file holds them.
    let mut secrets = Vec::new();
    for (tag, vr) in [((0x0010, 0x0010), b"PN"), ((0x0010, 0x0020), b"LO"), ((0x0010, 0x0030), b"DA")] {
        let (at, len) = value_at(&bytes, tag, vr);
        let value = String::from_utf8_lossy(&bytes[at..at + len]).trim_matches([' ', '\0']).to_string();
        secrets.extend(value.split('^').filter(|p| p.len() >= 4).map(str::to_string));
    }
    assert!(!secrets.is_empty(), "MR_small.dcm has a patient name");

    let mut shown = Vec::new();
    let d = decode(&bytes, &Limits::default()).unwrap();
    shown.push(format!("{:?}", d.dicom));
    shown.push(serde_json::to_string(&d.dicom).unwrap());
    shown.push(format!("{:?}", Decoded { image: DynamicImage::new_luma8(1, 1), ..d }));
    let mut bad = vec![bytes[..bytes.len() / 2].to_vec(), bytes[..600].to_vec()];
    let mut huge = bytes.clone();
    let (at, _) = value_at(&huge, (0x0028, 0x0010), b"US");
    huge[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    bad.push(huge);
    // A name (upper case, a valid code string) where the modality or the
    // photometric interpretation should be is not echoed either.
    for (tag, name) in [((0x0008, 0x0060), "JD"), ((0x0028, 0x0004), "COMPRESSEDSA")] {
        let b = patched("MR_small.dcm", tag, b"CS", name.as_bytes());
        secrets.push(name.to_string());
        match decode(&b, &Limits::default()) {
            Ok(d) => shown.push(format!("{:?} {}", d.dicom, serde_json::to_string(&d.dicom).unwrap())),
            Err(e) => shown.push(format!("{e} {e:?}")),
        }
    }
    for b in &bad {
        let e = err(b);
        shown.push(format!("{e} {e:?}"));
    }
    for s in &shown {
        for secret in &secrets {
            assert!(!s.contains(secret.as_str()), "{secret:?} leaked into: {s}");
        }
    }
}

#[test]
fn a_dicom_file_classifies() {
    let mut c = Classifier::new(&common::tiny_model(), &LoadOptions::default()).unwrap();
    let p = block_on(c.classify(&file("MR_small.dcm"))).unwrap();
    assert_eq!(p.format, "DICOM");
    let sum: f32 = p.probabilities.iter().map(|c| c.probability).sum();
    assert!((sum - 1.0).abs() <= 1e-5);
}
