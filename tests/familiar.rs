//! The familiarity check through the front door: statistics in the model's
//! `mriscreen.familiarity` metadata reach every prediction, and bad or
//! misplaced statistics refuse the model with an error that names the key.

mod common;

use mriscreen::familiar::{pool, Familiarity};
use mriscreen::model::random::{self, RandomNet};
use mriscreen::CLASSES;
use mriscreen::model::{keys, with_metadata, LoadOptions, Overrides};
use mriscreen::{block_on, Classifier, ReferReason};

fn mobilenet() -> Vec<u8> {
    random::mobilenet_v2(0.35, &RandomNet::new(&CLASSES, 96, 3))
}

/// Statistics centred on `centre` for every class, limit `limit`.
fn stats(centre: &[f32], limit: f32) -> String {
    Familiarity { means: vec![centre.to_vec(); CLASSES.len()], limit, rule: "test".into() }.to_json()
}

#[test]
fn predictions_carry_the_distance_and_the_verdict() {
    let model = mobilenet();
    let scan = common::png(common::phantom(180, 140));
    let other = common::png(common::phantom(60, 200));
    let plain = block_on(Classifier::new(&model, &LoadOptions::default()).unwrap().classify(&scan)).unwrap();
    let unfamiliar = |p: &mriscreen::Prediction| p.refer_reasons.iter().any(|r| matches!(r, ReferReason::Unfamiliar { .. }));
    assert_eq!((plain.familiarity_distance, unfamiliar(&plain)), (None, false), "no statistics, no check");
    let centre = pool(plain.features.as_ref().expect("features output"));

    let familiar = with_metadata(&model, &[(keys::FAMILIARITY, stats(&centre, 0.5))]).unwrap();
    let mut c = Classifier::new(&familiar, &LoadOptions::default()).unwrap();
    let p = block_on(c.classify(&scan)).unwrap();
    assert!(p.familiarity_distance.unwrap() < 1e-3, "{:?}", p.familiarity_distance);
    assert_eq!((p.familiarity_limit, unfamiliar(&p)), (Some(0.5), false));
    // The class probabilities do not change.
    assert_eq!(p.probabilities, plain.probabilities);
    let q = block_on(c.classify(&other)).unwrap();
    assert!(q.familiarity_distance.unwrap() > 0.0);

    // A limit below the other image's distance: unfamiliar.
    let strict = with_metadata(&model, &[(keys::FAMILIARITY, stats(&centre, q.familiarity_distance.unwrap() / 2.0))]).unwrap();
    let r = block_on(Classifier::new(&strict, &LoadOptions::default()).unwrap().classify(&other)).unwrap();
    assert!(r.refer && unfamiliar(&r), "{:?} > {:?}", r.familiarity_distance, r.familiarity_limit);
    let (d, l) = (r.familiarity_distance.unwrap(), r.familiarity_limit.unwrap());
    assert!(r.refer_reasons.contains(&ReferReason::Unfamiliar { distance: d, limit: l }), "{:?}", r.refer_reasons);
}

#[test]
fn bad_statistics_refuse_the_model() {
    let model = mobilenet();
    let centre = vec![1.0; 1280];
    for (value, says) in [
        ("{not json".to_string(), "not the expected JSON"),
        (
            Familiarity { means: vec![vec![1.0; 10], vec![1.0; 1280], vec![1.0; 1280], vec![1.0; 1280]], limit: 1.0, rule: String::new() }.to_json(),
            "different lengths",
        ),
        (stats(&centre, 0.0), "positive finite"),
    ] {
        let bad = with_metadata(&model, &[(keys::FAMILIARITY, value)]).unwrap();
        let e = Classifier::new(&bad, &LoadOptions::default()).err().unwrap_or_else(|| panic!("refused: {says}")).to_string();
        assert!(e.contains("mriscreen.familiarity") && e.contains(says), "{e}");
        assert!(e.len() < 400, "the error does not quote the whole value: {e}");
    }
    // Statistics on a model without a `features` output (a PyTorch-style export).
    let plain = with_metadata(&common::third_party(Default::default()), &[(keys::FAMILIARITY, stats(&centre, 1.0))]).unwrap();
    let classes = Some(["a", "b", "c"].map(String::from).to_vec());
    let opts = LoadOptions { overrides: Overrides { classes, ..Default::default() }, ..Default::default() };
    let e = Classifier::new(&plain, &opts).err().expect("refused").to_string();
    assert!(e.contains("no `features` output"), "{e}");
}
