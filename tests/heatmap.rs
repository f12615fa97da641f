//! Heat-maps and previews: the class-activation map found in the graph must
//! explain the logits exactly (mean over cells + bias = logit), in every
//! weight precision; previews and maps come with predictions only when asked.

mod common;

use mriscreen::heatmap::{cam, CamWeights};
use mriscreen::model::random::{self, RandomNet};
use mriscreen::CLASSES;
use mriscreen::model::tensor_data::values_f32;
use mriscreen::model::{LoadOptions, ModelPackage, Precision};
use mriscreen::{block_on, Classifier};

fn mobilenet(precision: Precision) -> Vec<u8> {
    let mut opts = RandomNet::new(&CLASSES, 96, 3);
    opts.precision = precision;
    random::mobilenet_v2(0.35, &opts)
}

fn weights(model: &[u8]) -> CamWeights {
    let package = ModelPackage::read(model, &LoadOptions::default()).expect("random model loads");
    CamWeights::from_model(&package.proto, &package.info.logits_name).expect("final Gemm found")
}

#[test]
fn cam_mean_plus_bias_is_the_logit() {
    let model = mobilenet(Precision::Fp32);
    let w = weights(&model);
    assert_eq!((w.classes, w.channels), (4, 1280));
    let package = ModelPackage::read(&model, &LoadOptions::default()).expect("loads");
    let graph = package.proto.graph.as_ref().expect("graph");
    let bias = graph.initializer.iter().find(|t| t.name == "classifier.1.bias").and_then(values_f32).expect("bias");
    let mut classifier = Classifier::new(&model, &LoadOptions::default()).expect("loads");
    let image = common::png(common::phantom(180, 140));
    let p = block_on(classifier.classify(&image)).expect("classifies");
    let features = p.features.as_ref().expect("features output");
    let scale = p.logits.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for c in 0..4 {
        let map = cam(features, &w, c).expect("map");
        let mean = map.data.iter().sum::<f32>() / map.data.len() as f32;
        let d = (mean + bias[c] - p.logits[c]).abs();
        assert!(d <= 1e-4 * scale, "class {c}: mean CAM + bias {} vs logit {} (|d| {d})", mean + bias[c], p.logits[c]);
    }
}

#[test]
fn compressed_weights_are_found_through_cast_and_dequantize() {
    let fp32 = weights(&mobilenet(Precision::Fp32));
    for precision in [Precision::Fp16, Precision::Int8] {
        let w = weights(&mobilenet(precision));
        assert_eq!((w.classes, w.channels), (fp32.classes, fp32.channels), "{precision}");
        let scale = fp32.w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = w.w.iter().zip(&fp32.w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 0.01 * scale, "{precision}: weights differ from fp32 by {worst} (scale {scale})");
    }
}

#[test]
fn previews_and_heatmaps_only_when_asked() {
    let model = mobilenet(Precision::Fp32);
    let image = common::png(common::phantom(600, 300));
    let mut plain = Classifier::new(&model, &LoadOptions::default()).expect("loads");
    let p = block_on(plain.classify(&image)).expect("classifies");
    assert!(p.preview.is_none() && p.heatmap.is_none());

    let mut with = Classifier::new(&model, &LoadOptions::default()).expect("loads").with_previews(true);
    let p = block_on(with.classify(&image)).expect("classifies");
    let preview = p.preview.expect("preview");
    assert_eq!((preview.width, preview.height, preview.pixels.len()), (256, 128, 256 * 128));
    // The phantom's background is dark and its skull ring bright.
    assert!(preview.pixels[0] < 30, "corner {}", preview.pixels[0]);
    assert!(preview.pixels.iter().any(|&v| v > 200));
    let map = p.heatmap.expect("heat-map");
    assert_eq!((map.width, map.height, map.values.len()), (256, 128, 256 * 128));
    assert_eq!(map.class, p.label);
    // Scaled by the map's maximum, which bilinear sampling meets only nearly.
    assert!(map.values.iter().copied().max() >= Some(240), "{:?}", map.values.iter().max());
}

#[test]
fn a_model_without_features_has_a_preview_but_no_heatmap() {
    let model = common::third_party(common::ThirdParty::default());
    let opts = LoadOptions {
        overrides: mriscreen::Overrides { classes: Some(vec!["a".into(), "b".into(), "c".into()]), ..Default::default() },
        ..Default::default()
    };
    let mut c = Classifier::new(&model, &opts).expect("loads").with_previews(true);
    let p = block_on(c.classify(&common::png(common::phantom(64, 64)))).expect("classifies");
    assert!(p.preview.is_some());
    assert!(p.heatmap.is_none());
}
