//! Files of a SynthTumor folder: the Kaggle layout (`Training/<class>/`,
//! `Testing/<class>/`) of greyscale JPEGs, each carrying a JPEG comment
//! (COM segment, ITU-T T.81 §B.2.4.5) that says it is synthetic; one PNG
//! contact sheet per class with a "SYNTHETIC" banner; the README. `--force`
//! replaces only what SynthTumor wrote before and refuses a folder that
//! holds anything else in the class folders.

use mriscreen::CLASSES;
use anyhow::{bail, Context, Result};
use image::{ExtendedColorType, GrayImage};
use std::path::Path;

pub const SPLITS: [&str; 2] = ["Training", "Testing"];
pub const README_TITLE: &str = "# SynthTumor";
pub const JPEG_COMMENT: &str = "SynthTumor: SYNTHETIC image (real Colin27/MNI anatomy, simulated lesion), not a real patient";

pub fn image_name(class: &str, index: usize) -> String {
    format!("synth_{class}_{index:06}.jpg")
}

pub fn contact_sheet_name(class: &str) -> String {
    format!("contact_sheet_synth_{class}.png")
}

/// Makes `dir` ready: create it, accept it empty, or (with `force`) clear
/// a previous SynthTumor output from it.
pub fn prepare(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() {
        return std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()));
    }
    if !dir.is_dir() {
        bail!("{} exists and is not a folder", dir.display());
    }
    let mut entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    if entries.next().is_none() {
        return Ok(());
    }
    if !force {
        bail!("output folder {} is not empty; pass --force to replace a previous SynthTumor output there", dir.display());
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    if !readme.starts_with(README_TITLE) {
        bail!(
            "{} is not empty and is not a SynthTumor folder (no README.md starting with \"{README_TITLE}\"); \
             --force only replaces SynthTumor output: choose another --out",
            dir.display()
        );
    }
    // Look first, delete after: refuse before touching anything foreign.
    let mut ours = Vec::new();
    for split in SPLITS {
        for class in CLASSES {
            let d = dir.join(split).join(class);
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd {
                let e = e.with_context(|| format!("cannot list {}", d.display()))?;
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("synth_") && name.ends_with(".jpg") && e.path().is_file() {
                    ours.push(e.path());
                } else {
                    bail!("{} holds {name}, which SynthTumor did not write; not replacing it", d.display());
                }
            }
        }
    }
    for class in CLASSES {
        ours.push(dir.join(contact_sheet_name(class)));
    }
    ours.push(dir.join("synth_metadata.csv"));
    ours.push(dir.join("README.md"));
    for f in ours {
        if f.is_file() {
            std::fs::remove_file(&f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    for split in SPLITS {
        for class in CLASSES {
            let _ = std::fs::remove_dir(dir.join(split).join(class));
        }
        let _ = std::fs::remove_dir(dir.join(split));
    }
    Ok(())
}

/// Greyscale JPEG (quality 90) with our comment segment after SOI.
pub fn write_jpeg(path: &Path, size: usize, pixels: &[u8]) -> Result<()> {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
        .encode(pixels, size as u32, size as u32, ExtendedColorType::L8)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    let text = JPEG_COMMENT.as_bytes();
    let len = (text.len() + 2) as u16;
    let mut out = Vec::with_capacity(buf.len() + text.len() + 4);
    out.extend_from_slice(&buf[..2]); // SOI
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text);
    out.extend_from_slice(&buf[2..]);
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// A 4×4 grid of 128 px thumbnails under a "SYNTHETIC – CLASS" banner.
pub fn contact_sheet(path: &Path, class: &str, thumbs: &[GrayImage]) -> Result<()> {
    const T: u32 = 128;
    const GAP: u32 = 4;
    const BANNER: u32 = 26;
    let cols = 4;
    let rows = thumbs.len().div_ceil(cols).max(1) as u32;
    let w = cols as u32 * (T + GAP) + GAP;
    let h = BANNER + rows * (T + GAP) + GAP;
    let mut sheet = GrayImage::from_pixel(w, h, image::Luma([40]));
    draw_text(&mut sheet, &format!("SYNTHETIC - {}", class.to_uppercase()), GAP, 5, 2);
    for (i, t) in thumbs.iter().enumerate() {
        let small = image::imageops::resize(t, T, T, image::imageops::FilterType::Triangle);
        let (x, y) = ((i % cols) as u32 * (T + GAP) + GAP, BANNER + (i / cols) as u32 * (T + GAP) + GAP);
        image::imageops::replace(&mut sheet, &small, x as i64, y as i64);
    }
    sheet.save(path).with_context(|| format!("cannot write {}", path.display()))
}

/// 5×7 capitals, '-' and space, drawn at `scale`.
fn draw_text(img: &mut GrayImage, text: &str, x0: u32, y0: u32, scale: u32) {
    let mut x = x0;
    for ch in text.chars() {
        let rows = glyph(ch);
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits & (0x10 >> c) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (px, py) = (x + c * scale + dx, y0 + r as u32 * scale + dy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, image::Luma([255]));
                            }
                        }
                    }
                }
            }
        }
        x += 6 * scale;
    }
}

fn glyph(c: char) -> [u8; 7] {
    const FONT: [[u8; 7]; 26] = [
        [14, 17, 17, 31, 17, 17, 17], [30, 17, 17, 30, 17, 17, 30], [14, 17, 16, 16, 16, 17, 14],
        [30, 17, 17, 17, 17, 17, 30], [31, 16, 16, 30, 16, 16, 31], [31, 16, 16, 30, 16, 16, 16],
        [14, 17, 16, 23, 17, 17, 15], [17, 17, 17, 31, 17, 17, 17], [14, 4, 4, 4, 4, 4, 14],
        [7, 2, 2, 2, 2, 18, 12], [17, 18, 20, 24, 20, 18, 17], [16, 16, 16, 16, 16, 16, 31],
        [17, 27, 21, 21, 17, 17, 17], [17, 17, 25, 21, 19, 17, 17], [14, 17, 17, 17, 17, 17, 14],
        [30, 17, 17, 30, 16, 16, 16], [14, 17, 17, 17, 21, 18, 13], [30, 17, 17, 30, 20, 18, 17],
        [15, 16, 16, 14, 1, 1, 30], [31, 4, 4, 4, 4, 4, 4], [17, 17, 17, 17, 17, 17, 14],
        [17, 17, 17, 17, 17, 10, 4], [17, 17, 17, 21, 21, 21, 10], [17, 17, 10, 4, 10, 17, 17],
        [17, 17, 10, 4, 4, 4, 4], [31, 1, 2, 4, 8, 16, 31],
    ];
    match c {
        'A'..='Z' => FONT[(c as u8 - b'A') as usize],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        _ => [0; 7],
    }
}
