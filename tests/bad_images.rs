//! Every bad image gets a specific, helpful error, never a panic.

mod common;

use image::{GrayImage, Luma};
use mriscreen::decode::{decode, DecodeError, Limits};
use mriscreen::{block_on, Classifier, Error, LoadOptions};

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes, &Limits::default()).expect_err("must be refused")
}

#[test]
fn empty_file() {
    let e = err(&[]);
    assert!(matches!(e, DecodeError::Empty));
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn random_bytes() {
    let mut rng = mriscreen::rng::Rng::new(3);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    let e = err(&bytes);
    assert!(matches!(e, DecodeError::UnknownFormat { .. }), "{e}");
    assert!(e.to_string().contains("supported formats are JPEG, PNG"), "{e}");
}

#[test]
fn truncated_jpeg() {
    let full = common::jpeg(common::phantom(96, 96));
    let e = err(&full[..full.len() / 2]);
    assert!(matches!(e, DecodeError::Corrupt { format: "JPEG", .. }), "{e}");
    assert!(e.to_string().contains("truncated or corrupt"), "{e}");
}

#[test]
fn truncated_png() {
    let full = common::png(common::phantom(96, 96));
    for cut in [full.len() / 2, full.len() - 13, 40] {
        let e = err(&full[..cut]);
        assert!(matches!(e, DecodeError::Corrupt { format: "PNG", .. }), "cut {cut}: {e}");
    }
}

#[test]
fn png_header_claiming_100000_squared_is_refused_before_allocating() {
    let e = err(&common::png_claiming(100_000, 100_000));
    match e {
        DecodeError::TooManyPixels { width, height, .. } => assert_eq!((width, height), (100_000, 100_000)),
        other => panic!("expected TooManyPixels, got {other}"),
    }
}

#[test]
fn one_pixel_image() {
    let e = err(&common::png(GrayImage::from_pixel(1, 1, Luma([9]))));
    assert!(matches!(e, DecodeError::TooSmall { width: 1, height: 1, .. }), "{e}");
    assert!(e.to_string().contains("at least 16 × 16"), "{e}");
}

#[test]
fn text_file_named_png() {
    let e = err(b"patient notes: scan follows tomorrow\n");
    assert!(matches!(e, DecodeError::Text { .. }), "{e}");
    assert!(e.to_string().contains("text file"), "{e}");
}

#[test]
fn over_the_byte_budget() {
    let limits = Limits { max_bytes: 100, ..Limits::default() };
    let e = decode(&common::png(common::phantom(64, 64)), &limits).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
}

#[test]
fn classifier_keeps_working_after_bad_input() {
    let mut c = Classifier::new(&common::tiny_model(), &LoadOptions::default()).unwrap();
    assert!(matches!(block_on(c.classify(b"garbage")), Err(Error::Decode(_))));
    assert!(block_on(c.classify(&common::png(common::phantom(64, 64)))).is_ok());
}
