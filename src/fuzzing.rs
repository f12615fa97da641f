//! Fuzz targets: the entry points `fuzz/fuzz_targets/*.rs` hand libFuzzer's
//! inputs to (`scripts/fuzz` runs them), and that `tests/fuzz_regressions.rs`
//! replays the committed seeds, the minimised crashes and a bounded number
//! of seeded mutations through in every test run. Each one must return for
//! any input; an error is a correct answer, a panic or an abort is a finding.
//!
//! | target | what it feeds |
//! |---|---|
//! | `image` | [`crate::decode::decode_frame`] (every format, DICOM included), a frame chosen by the last byte |
//! | `dicom` | the DICOM parser and pixel decoders: the input behind a 128-byte preamble and `DICM` |
//! | `model_package` | [`crate::ModelPackage::read`] (protobuf, structure checks, metadata) and its description |
//! | `normaliser` | the WebGPU path's graph rewrite ([`crate::model::normalise::for_wonnx`]) of any file `read` accepts |
//! | `classify` | [`crate::Classifier::classify`] on the CPU with a small fixed model: decode, preprocess, inference, referral |

use crate::decode::{decode_frame, Limits};
use crate::model::random::{Layers, RandomNet};
use crate::model::{normalise, LoadOptions, ModelPackage};
use crate::Classifier;
use std::sync::{Mutex, OnceLock};

/// The targets by name, for the regression test and `scripts/fuzz`.
pub const TARGETS: [(&str, fn(&[u8])); 5] =
    [("image", image), ("dicom", dicom), ("model_package", model_package), ("normaliser", normaliser), ("classify", classify)];

/// Small limits, so a fuzzer's "image of 60,000 × 60,000 pixels" is refused
/// by the budget check (which is what is being tested) instead of being
/// allocated.
fn limits() -> Limits {
    Limits { max_bytes: 1 << 20, max_pixels: 1 << 20, ..Limits::default() }
}

pub fn image(data: &[u8]) {
    let frame = data.last().map(|&b| u32::from(b % 4));
    let _ = decode_frame(data, &limits(), None);
    let _ = decode_frame(data, &limits(), frame);
}

pub fn dicom(data: &[u8]) {
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(data);
    let _ = decode_frame(&file, &limits(), None);
}

pub fn model_package(data: &[u8]) {
    if let Ok(package) = ModelPackage::read(data, &LoadOptions::default()) {
        // What the page and `predict` print about a model: every field must be readable.
        let _ = format!("{:?}", package.info);
    }
}

pub fn normaliser(data: &[u8]) {
    if let Ok(package) = ModelPackage::read(data, &LoadOptions::default()) {
        let _ = normalise::for_wonnx(&package);
    }
}

pub fn classify(data: &[u8]) {
    static CLASSIFIER: OnceLock<Mutex<Classifier>> = OnceLock::new();
    let classifier = CLASSIFIER.get_or_init(|| {
        let model = tiny_model(16, 1);
        let c = Classifier::new(&model, &LoadOptions::default()).expect("the fixed fuzzing model loads");
        Mutex::new(c.with_limits(limits()))
    });
    // A panic in an earlier input poisons the lock; that input is the finding, so go on.
    let mut c = classifier.lock().unwrap_or_else(|p| p.into_inner());
    let _ = crate::block_on(c.classify(data));
}

/// A tiny classifier in the ONNX contract (conv → BN → ReLU6 → pooled
/// linear head, two classes, `size`² input, a `features` output): the
/// `classify` target's model and the seed of the model targets.
pub fn tiny_model(size: usize, seed: u64) -> Vec<u8> {
    let opts = RandomNet::new(&["glioma", "notumor"], size, seed);
    let mut l = Layers::new("tiny", &opts);
    let s = size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    l.conv_bn(&x, "features.0", 3, 4, 3, 2, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, 4, 2, "classifier");
    l.finish(&opts, "tiny-cnn", Some((4, size.div_ceil(2))))
}
