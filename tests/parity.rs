//! Native probabilities for the shared parity case equal the committed ones
//! that the in-browser test (tests/web.rs) also checks: together they prove
//! native and wasm agree within 1e-5.

mod common;

use mriscreen::{Classifier, LoadOptions};

#[test]
fn native_matches_committed_parity_values() {
    let (model, image) = common::parity_case();
    let mut c = Classifier::new(&model, &LoadOptions::default()).unwrap();
    let p = mriscreen::block_on(c.classify(&image)).unwrap();
    let ours: Vec<f32> = p.probabilities.iter().map(|c| c.probability).collect();
    let golden = common::golden("parity_expected.json");
    if std::env::var_os("MRISCREEN_BLESS").is_some() {
        let json = serde_json::json!({
            "case": "tests/common/mod.rs parity_case(): random MobileNetV2-0.5 seed 7 at 96 px, 150x130 phantom PNG",
            "producer": "native tract (MRISCREEN_BLESS=1 cargo test --test parity)",
            "probabilities": ours,
            "label": p.label,
        });
        std::fs::write(&golden, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
    }
    let expected: serde_json::Value = serde_json::from_str(common::PARITY_EXPECTED).unwrap();
    let expected: Vec<f32> = serde_json::from_value(expected["probabilities"].clone()).unwrap();
    assert_eq!(ours.len(), expected.len());
    for (a, b) in ours.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-5, "native {ours:?} vs committed {expected:?}");
    }
    // The probabilities must not be degenerate, or parity would prove little.
    assert!(ours.iter().all(|&p| p > 0.01), "{ours:?}");
}
