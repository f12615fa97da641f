//! DICOM input: one frame of a DICOM file as an image for the shared
//! preprocessing, following DICOM PS3.10 §7 (file format: preamble, `DICM`,
//! file meta group), PS3.5 §7–8, §10 and Annexes A and G (data set encoding,
//! transfer syntaxes, encapsulated and RLE pixel data), PS3.3 C.7.6.3 (image
//! pixel module) and C.11.1–C.11.2 (modality rescale, VOI window).
//!
//! The file meta group and the data set are read by dicom-rs
//! (`dicom-object`, no codec features: no C library, in wasm too), after a
//! structural pre-check ([`guard`]) that keeps a hostile length from
//! becoming a huge allocation. Pixel data is decoded here ([`pixels`]):
//! native, deflated data sets, RLE Lossless, and JPEG baseline, 8-bit
//! extended and lossless through the pure-Rust `jpeg-decoder`. JPEG-LS,
//! JPEG 2000, HTJ2K, 12-bit lossy JPEG and unknown syntaxes are refused by
//! name. Grey frames are rescaled, windowed and, for MONOCHROME1, inverted
//! ([`voi`]) into a 16-bit grey image; RGB stays RGB.
//!
//! A file is recognised by `DICM` at byte 128. Without the preamble, a file
//! starting with `DICM` is read the same way; a bare data set (no meta
//! group) is accepted when it starts with group 0002 or 0008 in little
//! endian and the pre-check walks it to its last byte; big endian bare
//! data sets are not recognised.
//!
//! Privacy: only the attributes listed in [`DicomSummary`] are read from the
//! data set; patient, study and institution attributes are never read, so
//! they cannot reach a message, a log or an export. Error messages quote
//! tags and byte offsets, never values, and dicom-rs's own error text
//! (which can quote values) is not passed on.

mod guard;
mod pixels;
mod syntax;
mod voi;

pub use voi::{Window, WindowSource};

use super::{DecodeError, Decoded, Limits};
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTable, InMemDicomObject};
use guard::Layout;
use pixels::{Geometry, Source};
use serde::Serialize;
use std::io::Read;
use syntax::{Compression, Encoding, Syntax};
use voi::{VoiFunction, Voi};

/// What may be shown about a DICOM file: how it is encoded and what the
/// image is, nothing that identifies anyone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DicomSummary {
    /// Transfer syntax name, e.g. "Explicit VR Little Endian".
    pub transfer_syntax: String,
    pub transfer_syntax_uid: String,
    /// e.g. "MR"; absent when missing or not a plain code string.
    pub modality: Option<String>,
    /// e.g. "MONOCHROME2".
    pub photometric_interpretation: String,
    pub rows: u32,
    pub columns: u32,
    pub frames: u32,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// The window used for a grey image; None for colour.
    pub window: Option<Window>,
    /// False for a bare data set read without file meta information.
    pub has_file_meta: bool,
}

/// Where the encoded data starts.
enum Start {
    /// File meta group at this offset (after `DICM`).
    Meta(usize),
    /// A bare data set from byte 0.
    Bare { explicit: bool },
}

/// Whether `bytes` is a DICOM file this module should read.
pub fn is_dicom(bytes: &[u8]) -> bool {
    sniff(bytes).is_some()
}

fn sniff(bytes: &[u8]) -> Option<Start> {
    if bytes.get(128..132) == Some(b"DICM") {
        return Some(Start::Meta(132));
    }
    if bytes.starts_with(b"DICM") {
        return Some(Start::Meta(4));
    }
    if bytes.len() < 8 {
        return None;
    }
    let group = u16::from_le_bytes([bytes[0], bytes[1]]);
    let vr_like = bytes[4].is_ascii_uppercase() && bytes[5].is_ascii_uppercase();
    match group {
        0x0002 if vr_like => guard::meta_end(bytes, 0).ok().filter(|&end| end > 0).map(|_| Start::Meta(0)),
        0x0008 => [true, false]
            .into_iter()
            .filter(|&explicit| vr_like || !explicit)
            .find(|&explicit| guard::check(bytes, Layout { explicit, big_endian: false }).is_ok())
            .map(|explicit| Start::Bare { explicit }),
        _ => None,
    }
}

fn corrupt(detail: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt { format: "DICOM", detail: detail.into() }
}

/// Decodes frame `frame` (default: the middle one) of a DICOM file.
pub(crate) fn decode(bytes: &[u8], limits: &Limits, frame: Option<u32>) -> Result<Decoded, DecodeError> {
    let start = sniff(bytes).ok_or_else(|| corrupt("no DICM marker and not a readable data set"))?;
    let (syntax, data_start, has_file_meta) = match start {
        Start::Meta(at) => {
            let end = guard::meta_end(bytes, at).map_err(corrupt)?;
            // dicom-rs expects `DICM` before the meta group.
            let meta = FileMetaTable::from_reader(b"DICM".chain(&bytes[at..end]))
                .map_err(|_| corrupt("the file meta information (group 0002) is unreadable or has no Transfer Syntax UID"))?;
            (Syntax::lookup(meta.transfer_syntax())?, end, true)
        }
        Start::Bare { explicit } => (Syntax::bare(explicit), 0, false),
    };
    let inflated;
    let data = if syntax.encoding == Encoding::Deflated {
        // The inflated data set is held to the same budget as a file.
        inflated = miniz_oxide::inflate::decompress_to_vec_with_limit(&bytes[data_start..], limits.max_bytes).map_err(|e| {
            match e.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                    corrupt(format!("the deflated data set inflates to more than {} bytes", limits.max_bytes))
                }
                _ => corrupt("the deflated data set cannot be inflated"),
            }
        })?;
        &inflated[..]
    } else {
        &bytes[data_start..]
    };
    let mut encoding = syntax.encoding;
    if let Err(detail) = guard::check(data, Layout { explicit: encoding.explicit(), big_endian: encoding.big_endian() }) {
        // Some writers declare explicit VR little endian but write implicit
        // VR: read what is there when only that reading fits the bytes.
        let implicit = Layout { explicit: false, big_endian: false };
        if encoding != Encoding::ExplicitLittle || guard::check(data, implicit).is_err() {
            return Err(corrupt(detail));
        }
        encoding = Encoding::ImplicitLittle;
    }
    let object = InMemDicomObject::read_dataset_with_ts(data, &encoding.parser_syntax())
        .map_err(|_| corrupt("its data elements cannot be parsed"))?;
    render(&object, &syntax, has_file_meta, limits, frame)
}

/// Reads the image pixel module, checks it against `limits`, then decodes
/// and renders one frame.
fn render(
    object: &InMemDicomObject,
    syntax: &Syntax,
    has_file_meta: bool,
    limits: &Limits,
    frame: Option<u32>,
) -> Result<Decoded, DecodeError> {
    // Only defined terms are shown: a free-text value could be anything.
    let modality = object
        .get(tags::MODALITY)
        .and_then(|e| e.to_str().ok())
        .and_then(|s| MODALITIES.iter().find(|&&m| m == s.trim_matches([' ', '\0'])))
        .map(|m| m.to_string());
    let Some(pixel_data) = object.get(tags::PIXEL_DATA) else {
        if object.get(tags::FLOAT_PIXEL_DATA).is_some() || object.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some() {
            return Err(DecodeError::DicomUnsupportedImage { detail: "its pixels are floating point".into() });
        }
        let what = match &modality {
            Some(m) => format!("modality {m}, no Pixel Data"),
            None => "no Pixel Data".into(),
        };
        return Err(DecodeError::DicomNoImage { what });
    };
    let int = |tag, name: &str| -> Result<Option<i64>, DecodeError> {
        match object.get(tag) {
            None => Ok(None),
            Some(e) if e.value().multiplicity() == 0 => Ok(None),
            Some(e) => e.to_int::<i64>().map(Some).map_err(|_| corrupt(format!("{name} is not a number"))),
        }
    };
    let required = |tag, name: &str| int(tag, name)?.ok_or_else(|| corrupt(format!("{name} is missing")));
    let in_range = |v: i64, name: &str, max: i64| {
        if (0..=max).contains(&v) { Ok(v) } else { Err(corrupt(format!("{name} is {v}, which is impossible"))) }
    };

    let rows = in_range(required(tags::ROWS, "Rows")?, "Rows", 65535)? as u32;
    let columns = in_range(required(tags::COLUMNS, "Columns")?, "Columns", 65535)? as u32;
    let samples = in_range(int(tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?.unwrap_or(1), "Samples per Pixel", 4)? as u16;
    let bits_allocated = in_range(required(tags::BITS_ALLOCATED, "Bits Allocated")?, "Bits Allocated", 64)? as u16;
    let frames = in_range(int(tags::NUMBER_OF_FRAMES, "Number of Frames")?.unwrap_or(1), "Number of Frames", i64::from(u32::MAX))? as u32;
    if rows == 0 || columns == 0 || frames == 0 {
        return Err(corrupt(format!("the image is {columns} × {rows} pixels in {frames} frame(s)")));
    }
    let pixels = u64::from(rows) * u64::from(columns) * u64::from(frames);
    if pixels > limits.max_pixels {
        return Err(DecodeError::DicomTooManyPixels { rows, columns, frames, pixels, limit: limits.max_pixels });
    }
    if columns < limits.min_side || rows < limits.min_side {
        return Err(DecodeError::TooSmall { width: columns, height: rows, min: limits.min_side });
    }
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(DecodeError::DicomUnsupportedImage {
            detail: format!("it has {bits_allocated} bits allocated per sample; only 8 and 16 are supported"),
        });
    }
    let bits_stored = int(tags::BITS_STORED, "Bits Stored")?.unwrap_or(i64::from(bits_allocated));
    let bits_stored = in_range(bits_stored, "Bits Stored", i64::from(bits_allocated))? as u16;
    let high_bit = int(tags::HIGH_BIT, "High Bit")?.unwrap_or(i64::from(bits_stored) - 1);
    let high_bit = in_range(high_bit, "High Bit", i64::from(bits_allocated) - 1)? as u16;
    if bits_stored == 0 || high_bit + 1 < bits_stored {
        return Err(corrupt(format!("Bits Stored {bits_stored} and High Bit {high_bit} do not fit together")));
    }
    let signed = int(tags::PIXEL_REPRESENTATION, "Pixel Representation")?.unwrap_or(0) == 1;
    let planar = int(tags::PLANAR_CONFIGURATION, "Planar Configuration")?.unwrap_or(0) == 1;

    let photometric = object
        .get(tags::PHOTOMETRIC_INTERPRETATION)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches([' ', '\0']).to_string())
        .unwrap_or_else(|| if samples == 1 { "MONOCHROME2".into() } else { String::new() });
    let shown = match PHOTOMETRIC.iter().find(|&&p| p == photometric) {
        Some(p) => p.to_string(),
        None => "an unrecognised value".into(),
    };
    let compressed = syntax.compression == Compression::Jpeg;
    let kind = match (photometric.as_str(), samples) {
        ("MONOCHROME1" | "MONOCHROME2", 1) => Kind::Grey { monochrome1: photometric == "MONOCHROME1" },
        ("RGB", 3) => Kind::Colour { ybr: false },
        // A JPEG decoder returns YBR_FULL(_422) as RGB (PS3.5 §8.2.1).
        ("YBR_FULL" | "YBR_FULL_422", 3) if compressed => Kind::Colour { ybr: false },
        ("YBR_FULL", 3) if bits_allocated == 8 => Kind::Colour { ybr: true },
        _ => {
            return Err(DecodeError::DicomUnsupportedImage {
                detail: format!("its Photometric Interpretation is {shown} with {samples} sample(s) per pixel"),
            })
        }
    };
    if signed && matches!(kind, Kind::Colour { .. }) {
        return Err(DecodeError::DicomUnsupportedImage { detail: "its colour samples are signed".into() });
    }

    let index = match frame {
        None => frames / 2,
        Some(f) if f < frames => f,
        Some(frame) => return Err(DecodeError::FrameOutOfRange { frame, frames }),
    };
    let source = match pixel_data.value() {
        Value::PixelSequence(seq) => Source::Fragments { offsets: seq.offset_table(), fragments: seq.fragments() },
        Value::Primitive(PrimitiveValue::U8(bytes)) => Source::Bytes { data: &bytes[..], big_endian: syntax.encoding.big_endian() },
        Value::Primitive(PrimitiveValue::U16(words)) => Source::Words(&words[..]),
        _ => return Err(corrupt("Pixel Data is empty or of an unexpected type")),
    };
    let geo = Geometry { rows, columns, samples, bits_allocated, bits_stored, high_bit, signed, planar, frames };
    let raw = pixels::frame(&source, syntax, &geo, index, photometric == "RGB")?;

    let (image, window) = match kind {
        Kind::Grey { monochrome1 } => {
            let float = |tag, name: &str| -> Result<Option<f64>, DecodeError> {
                match object.get(tag) {
                    None => Ok(None),
                    Some(e) if e.value().multiplicity() == 0 => Ok(None),
                    Some(e) => e.to_float64().map(Some).map_err(|_| corrupt(format!("{name} is not a number"))),
                }
            };
            let slope = float(tags::RESCALE_SLOPE, "Rescale Slope")?.unwrap_or(1.0);
            let intercept = float(tags::RESCALE_INTERCEPT, "Rescale Intercept")?.unwrap_or(0.0);
            if !slope.is_finite() || slope == 0.0 || !intercept.is_finite() {
                return Err(corrupt(format!("the rescale {slope} · v + {intercept} is unusable")));
            }
            // First value of each; a window that does not parse is ignored.
            let first = |tag| object.get(tag).and_then(|e| e.to_multi_float64().ok()).and_then(|v| v.first().copied());
            let window = first(tags::WINDOW_CENTER).zip(first(tags::WINDOW_WIDTH));
            let function = object
                .get(tags::VOILUT_FUNCTION)
                .and_then(|e| e.to_str().ok())
                .map_or(VoiFunction::Linear, |s| VoiFunction::parse(&s));
            let (image, window) = voi::grey(&raw, &geo, &Voi { slope, intercept, window, function, monochrome1 });
            (image, Some(window))
        }
        Kind::Colour { ybr } => (voi::colour(&raw, &geo, ybr), None),
    };
    let summary = DicomSummary {
        transfer_syntax: syntax.name.to_string(),
        transfer_syntax_uid: syntax.uid.to_string(),
        modality,
        photometric_interpretation: shown,
        rows,
        columns,
        frames,
        bits_allocated,
        bits_stored,
        signed,
        window,
        has_file_meta,
    };
    Ok(Decoded { image, format: "DICOM", frames, frame: index, dicom: Some(summary) })
}

/// Defined terms of Modality (PS3.3 C.7.3.1.1.1, current and retired).
const MODALITIES: &[&str] = &[
    "AR", "AS", "ASMT", "AU", "BDUS", "BI", "BMD", "CD", "CF", "CFM", "CP", "CR", "CS", "CT", "CTPROTOCOL", "DD", "DF",
    "DG", "DM", "DMS", "DOC", "DS", "DX", "EC", "ECG", "EEG", "EMG", "EOG", "EPS", "ES", "FA", "FID", "FS", "GM", "HC",
    "HD", "IO", "IOL", "IVOCT", "IVUS", "KER", "KO", "LEN", "LP", "LS", "M3D", "MA", "MG", "MR", "MS", "NM", "OAM",
    "OCT", "OP", "OPM", "OPR", "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PA", "PLAN", "POS", "PR", "PT", "PX",
    "REG", "RESP", "RF", "RG", "RTDOSE", "RTIMAGE", "RTINTENT", "RTPLAN", "RTRAD", "RTRECORD", "RTSEGANN",
    "RTSTRUCT", "RWV", "SEG", "SM", "SMR", "SR", "SRF", "ST", "STAIN", "TEXTUREMAP", "TG", "US", "VA", "VF", "XA",
    "XAPROTOCOL", "XC",
];

/// Photometric Interpretation values (PS3.3 C.7.6.3.1.2, current and retired).
const PHOTOMETRIC: &[&str] = &[
    "MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "HSV", "ARGB", "CMYK", "YBR_FULL", "YBR_FULL_422",
    "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "XYB",
];

enum Kind {
    Grey { monochrome1: bool },
    Colour { ybr: bool },
}
