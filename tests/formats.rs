//! Every supported format decodes, keeps its precision, and classifies to
//! probabilities over the model's classes summing to 1.

mod common;

use image::{DynamicImage, ImageFormat};
use mriscreen::{block_on, Classifier, LoadOptions};

fn check(c: &mut Classifier, bytes: &[u8], format: &str) {
    let p = block_on(c.classify(bytes)).unwrap_or_else(|e| panic!("{format}: {e}"));
    assert_eq!(p.format, format);
    let sum: f32 = p.probabilities.iter().map(|c| c.probability).sum();
    assert!((sum - 1.0).abs() <= 1e-5, "{format}: sum {sum}");
    let classes: Vec<&str> = p.probabilities.iter().map(|c| c.class.as_str()).collect();
    assert_eq!(classes, ["glioma", "meningioma", "notumor", "pituitary"]);
    assert!(classes.contains(&p.label.as_str()));
}

#[test]
fn all_formats_classify() {
    let c = &mut Classifier::new(&common::tiny_model(), &LoadOptions::default()).unwrap();
    let grey: DynamicImage = common::phantom(80, 64).into();
    let rgb: DynamicImage = common::phantom_rgb(80, 64).into();
    check(c, &common::encode(&grey, ImageFormat::Jpeg), "JPEG");
    check(c, &common::encode(&rgb, ImageFormat::Jpeg), "JPEG");
    check(c, &common::encode(&grey, ImageFormat::Png), "PNG");
    check(c, &common::encode(&rgb.to_rgba8().into(), ImageFormat::Png), "PNG");
    check(c, &common::png(common::phantom16(80, 64)), "PNG");
    check(c, &common::encode(&rgb, ImageFormat::Bmp), "BMP");
    check(c, &common::encode(&grey, ImageFormat::Tiff), "TIFF");
    check(c, &common::encode(&rgb, ImageFormat::WebP), "WebP");
    check(c, &std::fs::read(common::golden("progressive.jpg")).unwrap(), "JPEG");
}

#[test]
fn sixteen_bit_grey_keeps_its_depth() {
    let img = common::phantom16(32, 32);
    let decoded = mriscreen::decode::decode(&common::png(img.clone()), &Default::default()).unwrap();
    match decoded.image {
        DynamicImage::ImageLuma16(b) => assert_eq!(b, img),
        other => panic!("16-bit grey lost its depth: {:?}", other.color()),
    }
}

#[test]
fn palette_png_decodes_to_its_colours() {
    // 32x32, 2-entry palette: black and mid grey in alternating columns.
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 32, 32);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![0, 0, 0, 128, 128, 128]);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = (0..32 * 32).map(|i| (i % 2) as u8).collect();
        w.write_image_data(&data).unwrap();
    }
    let d = mriscreen::decode::decode(&bytes, &Default::default()).unwrap();
    let plane = mriscreen::preprocess::luminance(&d.image);
    assert_eq!(plane.data[0], 0.0);
    assert!((plane.data[1] - 128.0 / 255.0).abs() < 1e-6);
}

#[test]
fn progressive_jpeg_decodes_to_the_right_size() {
    let bytes = std::fs::read(common::golden("progressive.jpg")).unwrap();
    let d = mriscreen::decode::decode(&bytes, &Default::default()).unwrap();
    assert_eq!((d.image.width(), d.image.height()), (48, 64));
}

/// What the page's CPU-only engine does with a TIFF or WebP file: another
/// build decodes it into `Pixels` and this one classifies those. The result
/// must be the direct one's, in every field the page shows.
#[test]
fn classifying_decoded_pixels_gives_the_direct_result() {
    let c = &mut Classifier::new(&common::tiny_model(), &LoadOptions::default()).unwrap();
    let files = [
        (common::encode(&DynamicImage::ImageLuma16(common::phantom16(80, 64)), ImageFormat::Tiff), "TIFF"),
        (common::encode(&common::phantom_rgb(80, 64).into(), ImageFormat::WebP), "WebP"),
    ];
    for (bytes, format) in files {
        let direct = block_on(c.classify(&bytes)).unwrap();
        let pixels = Classifier::decode_pixels(&bytes, &Default::default(), None).unwrap();
        assert_eq!(pixels.format, format);
        let relayed = block_on(c.classify_pixels(pixels.clone())).unwrap();
        assert_eq!((relayed.format.as_str(), relayed.frames, relayed.frame), (format, 1, 0));
        assert_eq!(relayed.label, direct.label, "{format}");
        for (a, b) in relayed.probabilities.iter().zip(&direct.probabilities) {
            assert_eq!((a.class.as_str(), a.probability), (b.class.as_str(), b.probability), "{format}");
        }
        // Pixels that do not make the image they claim are refused, not guessed at.
        let short = mriscreen::decode::Pixels { data: pixels.data[..pixels.data.len() - 1].to_vec(), ..pixels };
        let e = block_on(c.classify_pixels(short)).unwrap_err().to_string();
        assert!(e.contains("do not make a 80 × 64"), "{e}");
    }
}
