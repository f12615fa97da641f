//! Contact sheets: image pairs side by side in one grey PNG, so a person can
//! look at what the near-duplicate check calls a duplicate and decide where
//! its threshold belongs.
//!
//! Each row holds one pair (left | right), every image stretched to a square
//! tile through the shared luminance and antialiased resize; rows are
//! separated by a white line, the two images of a pair by a black gap. The
//! sheet has no text: whoever writes it lists the rows (files, classes,
//! distance) next to it.

use anyhow::{Context, Result};
use image::{DynamicImage, GrayImage, Luma};
use mriscreen::preprocess::{luminance, resize};
use std::path::Path;

/// Pixels between the two images of a pair, and between rows.
const GAP: u32 = 6;

/// Writes `pairs` (left, right) as a PNG with `tile`-pixel images.
pub fn write(path: &Path, pairs: &[(&DynamicImage, &DynamicImage)], tile: u32) -> Result<()> {
    let rows = pairs.len().max(1) as u32;
    let width = 2 * tile + GAP;
    let height = rows * tile + (rows - 1) * GAP;
    let mut sheet = GrayImage::from_pixel(width, height, Luma([0]));
    for (row, (a, b)) in pairs.iter().enumerate() {
        let y0 = row as u32 * (tile + GAP);
        paste(&mut sheet, a, 0, y0, tile);
        paste(&mut sheet, b, tile + GAP, y0, tile);
        if row > 0 {
            for y in y0 - GAP / 2 - 1..y0 - GAP / 2 + 1 {
                for x in 0..width {
                    sheet.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    sheet.save(path).with_context(|| format!("writing the contact sheet {}", path.display()))
}

fn paste(sheet: &mut GrayImage, image: &DynamicImage, x0: u32, y0: u32, tile: u32) {
    let small = resize(&luminance(image), tile as usize, tile as usize);
    for (i, v) in small.data.iter().enumerate() {
        let (x, y) = ((i % tile as usize) as u32, (i / tile as usize) as u32);
        sheet.put_pixel(x0 + x, y0 + y, Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_land_side_by_side_in_rows() {
        let white: DynamicImage = GrayImage::from_pixel(30, 20, Luma([255])).into();
        let grey: DynamicImage = GrayImage::from_pixel(10, 10, Luma([100])).into();
        let path = std::env::temp_dir().join(format!("mriscreen-sheet-{}.png", std::process::id()));
        write(&path, &[(&white, &grey), (&grey, &white)], 16).unwrap();
        let sheet = image::open(&path).unwrap().to_luma8();
        assert_eq!(sheet.dimensions(), (2 * 16 + GAP, 2 * 16 + GAP));
        assert_eq!(sheet.get_pixel(8, 8)[0], 255, "row 0 left");
        assert_eq!(sheet.get_pixel(16 + GAP + 8, 8)[0], 100, "row 0 right");
        assert_eq!(sheet.get_pixel(8, 16 + GAP + 8)[0], 100, "row 1 left");
        assert_eq!(sheet.get_pixel(16 + 2, 8)[0], 0, "gap between the pair");
        let _ = std::fs::remove_file(path);
    }
}
