//! Transfer syntaxes (PS3.5 §10, Annex A): how the data set is encoded and
//! how its pixel data is compressed, for the ones this crate reads; the
//! registry's name for the ones it does not, so the error can name them.

use crate::decode::DecodeError;
use dicom_transfer_syntax_registry::{entries, TransferSyntax, TransferSyntaxIndex, TransferSyntaxRegistry};

/// How the data set's elements are encoded (PS3.5 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
    ExplicitBig,
    /// Explicit VR little endian, the whole data set deflated (PS3.5 A.5).
    Deflated,
}

impl Encoding {
    pub(crate) fn explicit(self) -> bool {
        self != Encoding::ImplicitLittle
    }

    pub(crate) fn big_endian(self) -> bool {
        self == Encoding::ExplicitBig
    }

    /// The dicom-rs transfer syntax that parses the (inflated) data set.
    pub(crate) fn parser_syntax(self) -> TransferSyntax {
        match self {
            Encoding::ImplicitLittle => entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
            Encoding::ExplicitLittle | Encoding::Deflated => entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            Encoding::ExplicitBig => entries::EXPLICIT_VR_BIG_ENDIAN.erased(),
        }
    }
}

/// How the pixel data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Native (uncompressed) pixel data, PS3.5 §8.1.
    Native,
    /// RLE Lossless, PS3.5 Annex G.
    Rle,
    /// JPEG baseline, extended (8-bit) and lossless process 14, PS3.5 §8.2.1
    /// and A.4.1.
    Jpeg,
}

/// A transfer syntax this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Syntax {
    pub uid: &'static str,
    pub name: &'static str,
    pub encoding: Encoding,
    pub compression: Compression,
}

const SUPPORTED: &[(&str, &str, Encoding, Compression)] = &[
    ("1.2.840.10008.1.2", "Implicit VR Little Endian", Encoding::ImplicitLittle, Compression::Native),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian", Encoding::ExplicitLittle, Compression::Native),
    ("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", Encoding::Deflated, Compression::Native),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian", Encoding::ExplicitBig, Compression::Native),
    ("1.2.840.10008.1.2.5", "RLE Lossless", Encoding::ExplicitLittle, Compression::Rle),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", Encoding::ExplicitLittle, Compression::Jpeg),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", Encoding::ExplicitLittle, Compression::Jpeg),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", Encoding::ExplicitLittle, Compression::Jpeg),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        Encoding::ExplicitLittle,
        Compression::Jpeg,
    ),
];

impl Syntax {
    /// The syntax named by `uid` (trailing NUL and spaces removed), or an
    /// error that names it.
    pub(crate) fn lookup(uid: &str) -> Result<Syntax, DecodeError> {
        let uid = uid.trim_end_matches(['\0', ' ']);
        if let Some(&(uid, name, encoding, compression)) = SUPPORTED.iter().find(|s| s.0 == uid) {
            return Ok(Syntax { uid, name, encoding, compression });
        }
        Err(unsupported(uid, None))
    }

    /// The syntax assumed for a bare data set without file meta information.
    pub(crate) fn bare(explicit: bool) -> Syntax {
        // The first two entries of the table: implicit, then explicit VR little endian.
        let (uid, name, encoding, compression) = SUPPORTED[usize::from(explicit)];
        Syntax { uid, name, encoding, compression }
    }
}

/// The error for a syntax we cannot decode: its registry name (or a note
/// that it is unknown) and its UID, as long as the UID looks like one (a
/// hostile file could put anything there).
pub(crate) fn unsupported(uid: &str, note: Option<&str>) -> DecodeError {
    let uid_ok = !uid.is_empty() && uid.len() <= 64 && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let name = match TransferSyntaxRegistry.get(uid) {
        Some(ts) if uid_ok => ts.name().to_string(),
        _ => "an unknown transfer syntax".to_string(),
    };
    let name = match note {
        Some(note) => format!("{name} {note}"),
        None => name,
    };
    let uid = if uid_ok { uid.to_string() } else { "(not a valid UID)".to_string() };
    DecodeError::DicomUnsupportedSyntax { name, uid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_syntaxes_are_named() {
        let e = Syntax::lookup("1.2.840.10008.1.2.4.90\0").unwrap_err().to_string();
        assert!(e.contains("JPEG 2000 Image Compression (Lossless Only)"), "{e}");
        assert!(e.contains("1.2.840.10008.1.2.4.90"), "{e}");
        let e = Syntax::lookup("1.2.840.10008.1.2.4.80").unwrap_err().to_string();
        assert!(e.contains("JPEG-LS Lossless"), "{e}");
        let e = Syntax::lookup("1.2.3.4").unwrap_err().to_string();
        assert!(e.contains("an unknown transfer syntax (transfer syntax 1.2.3.4)"), "{e}");
        let e = Syntax::lookup("John^Doe").unwrap_err().to_string();
        assert!(!e.contains("John"), "{e}");
    }

    #[test]
    fn supported_syntaxes_are_found() {
        for (uid, ..) in SUPPORTED {
            assert_eq!(Syntax::lookup(uid).unwrap().uid, *uid);
        }
        assert_eq!(Syntax::lookup("1.2.840.10008.1.2.5 ").unwrap().compression, Compression::Rle);
    }
}
