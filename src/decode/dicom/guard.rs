//! A structural pre-check of an encoded data set (PS3.5 §7.1 data elements,
//! §7.5 nesting of data sets, A.4 encapsulated pixel data), run over the
//! bytes before dicom-rs parses them.
//!
//! dicom-rs reserves each value's declared length before reading it, so a
//! 200-byte file whose header claims a 4 GB value would make it allocate
//! 4 GB. This walk follows the same encoding rules as the parser (the VRs
//! with a 16-bit length, undefined lengths as sequences, items, fragments)
//! without allocating, and refuses any defined length larger than the bytes
//! left in its container, any sequence nested deeper than [`MAX_DEPTH`], and
//! any header cut off by the end of the file. After it passes, no value the
//! parser reads can be larger than the file itself.
//!
//! The walk and the parser must agree on where every element ends. dicom-rs
//! reads a binary value (US, UL, FD, AT, a basic offset table, …) as a whole
//! number of values and skips the rest of a length that is not a multiple
//! of the value size without reading it, so its next header comes from the
//! wrong bytes: fuzzing found a 429-byte file whose odd-length UL made it
//! reserve 926 MB for an OB value our walk never saw. Such lengths are
//! refused (PS3.5 §6.2: a value is a whole number of values).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Real files nest sequences a handful of levels deep.
pub(crate) const MAX_DEPTH: u32 = 32;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Explicit VRs whose length field is 16 bits (PS3.5 Table 7.1-2); every
/// other VR, and an unrecognised one (read as UN), has a 32-bit length
/// after two reserved bytes.
const SHORT_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
    b"ST", b"TM", b"UI", b"UL", b"US",
];

/// How the bytes are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub explicit: bool,
    pub big_endian: bool,
}

struct Walker<'a> {
    data: &'a [u8],
    layout: Layout,
}

/// Checks the data set in `data` (everything after the file meta group).
pub(crate) fn check(data: &[u8], layout: Layout) -> Result<(), String> {
    Walker { data, layout }.data_set(0, data.len(), 0, false).map(|_| ())
}

/// Where the file meta group (explicit VR little endian, group 0002) that
/// starts at `start` ends: the first element of another group, or the end.
pub(crate) fn meta_end(data: &[u8], start: usize) -> Result<usize, String> {
    let w = Walker { data, layout: Layout { explicit: true, big_endian: false } };
    let mut pos = start;
    while pos < data.len() && data.len() - pos >= 2 && w.u16(pos) == 0x0002 {
        let (tag, len, header) = w.header(pos, data.len())?;
        if len == UNDEFINED || len as usize > data.len() - pos - header {
            return Err(format!("the file meta element {} at byte {pos} has an impossible length", show(tag)));
        }
        whole_values(tag, w.vr(pos, tag), len as usize, pos)?;
        pos += header + len as usize;
    }
    Ok(pos)
}

impl Walker<'_> {
    fn u16(&self, at: usize) -> u16 {
        let b = [self.data[at], self.data[at + 1]];
        if self.layout.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }

    fn u32(&self, at: usize) -> u32 {
        let b = [self.data[at], self.data[at + 1], self.data[at + 2], self.data[at + 3]];
        if self.layout.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    /// The element header at `pos` (at most `end`): tag, length, header size.
    fn header(&self, pos: usize, end: usize) -> Result<(Tag, u32, usize), String> {
        if end - pos < 8 {
            return Err(format!("the data ends inside an element header at byte {pos}"));
        }
        let tag = Tag(self.u16(pos), self.u16(pos + 2));
        if !self.layout.explicit || tag.0 == 0xFFFE {
            return Ok((tag, self.u32(pos + 4), 8));
        }
        let vr = [self.data[pos + 4], self.data[pos + 5]];
        if SHORT_VRS.contains(&&vr) {
            return Ok((tag, u32::from(self.u16(pos + 6)), 8));
        }
        if end - pos < 12 {
            return Err(format!("the data ends inside the header of {} at byte {pos}", show(tag)));
        }
        Ok((tag, self.u32(pos + 8), 12))
    }

    /// The VR the parser reads the element at `pos` as: the explicit VR (an
    /// unknown one as UN); in implicit VR the standard dictionary's, but OW
    /// for Pixel Data and Overlay Data, as the parser does.
    fn vr(&self, pos: usize, tag: Tag) -> VR {
        if self.layout.explicit {
            VR::from_binary([self.data[pos + 4], self.data[pos + 5]]).unwrap_or(VR::UN)
        } else if tag == Tag(0x7FE0, 0x0010) || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
            VR::OW
        } else {
            StandardDataDictionary.by_tag(tag).map_or(VR::UN, |e| e.vr().relaxed())
        }
    }

    /// Walks the elements in `pos..end`. In an item of undefined length
    /// (`delimited`), stops after its item delimitation item and returns
    /// where it ends.
    fn data_set(&self, mut pos: usize, end: usize, depth: u32, delimited: bool) -> Result<usize, String> {
        while pos < end {
            let (tag, len, header) = self.header(pos, end)?;
            if tag == Tag(0xFFFE, 0xE00D) {
                if delimited {
                    return Ok(pos + 8);
                }
                if depth == 0 {
                    // A stray delimiter outside any sequence: the parser skips it.
                    pos += 8;
                    continue;
                }
            }
            if tag.0 == 0xFFFE {
                return Err(format!("an unexpected item tag {} at byte {pos}", show(tag)));
            }
            let start = pos + header;
            if len == UNDEFINED {
                pos = if tag == Tag(0x7FE0, 0x0010) {
                    self.fragments(start, end)?
                } else {
                    // Any other element of undefined length is read as a sequence.
                    self.items(start, end, depth + 1, true)?
                };
                continue;
            }
            let len = len as usize;
            if len > end - start {
                return Err(format!(
                    "element {} at byte {pos} declares {len} bytes but only {} remain",
                    show(tag),
                    end - start
                ));
            }
            let vr = self.vr(pos, tag);
            whole_values(tag, vr, len, pos)?;
            if vr == VR::SQ {
                self.items(start, start + len, depth + 1, false)?;
            }
            pos = start + len;
        }
        if delimited {
            return Err("an item has no item delimiter before the end of the data".into());
        }
        Ok(pos)
    }

    /// Walks the items of a sequence: up to `end` when its length is
    /// defined, else up to and including its sequence delimiter.
    fn items(&self, mut pos: usize, end: usize, depth: u32, delimited: bool) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err(format!("sequences are nested more than {MAX_DEPTH} deep"));
        }
        loop {
            if !delimited && pos == end {
                return Ok(pos);
            }
            if end - pos < 8 {
                return Err(format!("the data ends inside a sequence at byte {pos}"));
            }
            let tag = Tag(self.u16(pos), self.u16(pos + 2));
            let len = self.u32(pos + 4);
            match (tag, len) {
                (Tag(0xFFFE, 0xE0DD), _) if delimited => return Ok(pos + 8),
                (Tag(0xFFFE, 0xE000), UNDEFINED) => pos = self.data_set(pos + 8, end, depth, true)?,
                (Tag(0xFFFE, 0xE000), len) => {
                    let len = len as usize;
                    if len > end - pos - 8 {
                        return Err(format!("an item at byte {pos} declares {len} bytes but only {} remain", end - pos - 8));
                    }
                    self.data_set(pos + 8, pos + 8 + len, depth, false)?;
                    pos += 8 + len;
                }
                _ => return Err(format!("expected a sequence item at byte {pos}, found {}", show(tag))),
            }
        }
    }

    /// Walks the items of encapsulated pixel data (PS3.5 A.4): the basic
    /// offset table and the fragments, each of defined length, then the
    /// sequence delimiter.
    fn fragments(&self, mut pos: usize, end: usize) -> Result<usize, String> {
        // The first item is the basic offset table, read as 32-bit offsets.
        let mut offset_table = true;
        loop {
            if end - pos < 8 {
                return Err(format!("the data ends inside the encapsulated pixel data at byte {pos}"));
            }
            let tag = Tag(self.u16(pos), self.u16(pos + 2));
            let len = self.u32(pos + 4);
            match tag {
                Tag(0xFFFE, 0xE0DD) => return Ok(pos + 8),
                Tag(0xFFFE, 0xE000) if offset_table && len % 4 != 0 && len != UNDEFINED => {
                    return Err(format!("the basic offset table at byte {pos} has {len} bytes, not a whole number of 4-byte offsets"))
                }
                Tag(0xFFFE, 0xE000) if len != UNDEFINED && len as usize <= end - pos - 8 => {
                    pos += 8 + len as usize;
                    offset_table = false;
                }
                Tag(0xFFFE, 0xE000) => {
                    return Err(format!("a pixel data fragment at byte {pos} declares {len} bytes but only {} remain", end - pos - 8))
                }
                _ => return Err(format!("expected a pixel data fragment at byte {pos}, found {}", show(tag))),
            }
        }
    }
}

/// Refuses a binary value whose length is not a whole number of values
/// (the module documentation says why).
fn whole_values(tag: Tag, vr: VR, len: usize, pos: usize) -> Result<(), String> {
    let size = match vr {
        VR::US | VR::SS | VR::OW => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL | VR::AT => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    };
    if len % size != 0 {
        return Err(format!(
            "element {} at byte {pos} ({}) has {len} bytes, not a whole number of {size}-byte values",
            show(tag),
            vr.to_string()
        ));
    }
    Ok(())
}

/// A tag as DICOM writes it: (gggg,eeee). Tags are not personal data.
pub(crate) fn show(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.0, tag.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE: Layout = Layout { explicit: true, big_endian: false };
    const IMPLICIT: Layout = Layout { explicit: false, big_endian: false };

    fn explicit(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = [tag.0.to_le_bytes(), tag.1.to_le_bytes()].concat();
        out.extend_from_slice(vr);
        if SHORT_VRS.contains(&vr) {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn a_well_formed_data_set_passes() {
        let mut data = explicit((0x0008, 0x0060), b"CS", b"MR");
        data.extend(explicit((0x0028, 0x0010), b"US", &64u16.to_le_bytes()));
        data.extend(explicit((0x7FE0, 0x0010), b"OW", &[0; 32]));
        assert_eq!(check(&data, LE), Ok(()));
    }

    #[test]
    fn a_huge_declared_length_is_refused() {
        let mut data = explicit((0x0010, 0x0010), b"OB", b"abcd");
        data[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let e = check(&data, LE).unwrap_err();
        assert!(e.contains("declares 4294967280 bytes"), "{e}");
        assert!(!e.contains("abcd"), "{e}");
    }

    #[test]
    fn lengths_inside_a_sequence_item_are_checked_against_the_item() {
        // An item of 12 bytes holding an element that claims 1000.
        let inner = explicit((0x0008, 0x0100), b"SH", &[b'x'; 4]);
        let mut bad = inner.clone();
        bad[6..8].copy_from_slice(&1000u16.to_le_bytes());
        let mut item = [0xFFFEu16.to_le_bytes(), 0xE000u16.to_le_bytes()].concat();
        item.extend_from_slice(&(bad.len() as u32).to_le_bytes());
        item.extend_from_slice(&bad);
        item.extend_from_slice(&[0; 1000]); // enough bytes after the item
        let seq = explicit((0x0008, 0x1140), b"SQ", &item[..8 + bad.len()]);
        let mut data = seq;
        data.extend_from_slice(&[0; 1000]);
        assert!(check(&data, LE).unwrap_err().contains("declares 1000 bytes"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        // (0008,1140) SQ of undefined length, nested 40 times, implicit VR.
        let mut data = Vec::new();
        for _ in 0..40 {
            data.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, 0xFF, 0xFF, 0xFF, 0xFF]);
            data.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let e = check(&data, IMPLICIT).unwrap_err();
        assert!(e.contains("nested more than"), "{e}");
    }

    #[test]
    fn a_binary_value_that_is_not_whole_values_is_refused() {
        // A UL of 5 bytes: the parser would read one value and take the
        // fifth byte as the start of the next header.
        let mut data = explicit((0x0028, 0x0008), b"UL", &[1, 0, 0, 0, 9]);
        data.extend(explicit((0x0010, 0x0010), b"PN", b"AB"));
        let e = check(&data, LE).unwrap_err();
        assert!(e.contains("(0028,0008) at byte 0 (UL) has 5 bytes, not a whole number of 4-byte values"), "{e}");
        // Implicit VR: the dictionary says Rows (0028,0010) is US.
        let mut implicit = vec![0x28, 0x00, 0x10, 0x00, 3, 0, 0, 0, 64, 0, 0];
        implicit.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 2, 0, 0, 0, b'A', b'B']);
        assert!(check(&implicit, IMPLICIT).unwrap_err().contains("2-byte values"));
        // Strings and bytes may have any length.
        assert_eq!(check(&explicit((0x0010, 0x0010), b"PN", b"ABC"), LE), Ok(()));
        assert_eq!(check(&explicit((0x0009, 0x0010), b"OB", &[1, 2, 3]), LE), Ok(()));
    }

    #[test]
    fn a_basic_offset_table_that_is_not_whole_offsets_is_refused() {
        let mut data = explicit((0x7FE0, 0x0010), b"OB", &[]);
        data[8..12].copy_from_slice(&UNDEFINED.to_le_bytes());
        for (len, body) in [(6u32, &[0u8; 6][..]), (4, &[0xFF, 0xD8, 0xFF, 0xD9][..])] {
            data.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(body);
        }
        data.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(check(&data, LE).unwrap_err().contains("basic offset table at byte 12 has 6 bytes"));
    }

    #[test]
    fn truncation_inside_a_header_is_refused() {
        let data = explicit((0x0028, 0x0010), b"US", &64u16.to_le_bytes());
        assert!(check(&data[..5], LE).unwrap_err().contains("ends inside"));
    }
}
