//! The wasm build, in headless Chromium (wasm-bindgen-test, run_in_browser):
//! the same model and image give the native build's probabilities within 1e-5,
//! through both the Rust API and the JavaScript boundary in src/web.rs.
#![cfg(target_arch = "wasm32")]

mod common;

use mriscreen::web::MriScreen;
use mriscreen::{Classifier, LoadOptions};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn expected() -> Vec<f32> {
    let v: serde_json::Value = serde_json::from_str(common::PARITY_EXPECTED).unwrap();
    serde_json::from_value(v["probabilities"].clone()).unwrap()
}

fn assert_close(ours: &[f32], expected: &[f32]) {
    assert_eq!(ours.len(), expected.len());
    for (a, b) in ours.iter().zip(expected) {
        assert!((a - b).abs() <= 1e-5, "browser {ours:?} vs native {expected:?}");
    }
}

#[wasm_bindgen_test]
fn rust_api_matches_native() {
    let (model, image) = common::parity_case();
    let p = Classifier::new(&model, &LoadOptions::default()).unwrap().classify(&image).unwrap();
    let ours: Vec<f32> = p.probabilities.iter().map(|c| c.probability).collect();
    assert_close(&ours, &expected());
}

#[wasm_bindgen_test]
async fn js_api_matches_native_and_reports_errors() {
    let (model, image) = common::parity_case();
    let screen = MriScreen::create(model.clone(), JsValue::UNDEFINED).await.map_err(|e| e.message()).unwrap();
    let result = screen.classify(image).await.map_err(|e| e.message()).unwrap();
    let v: serde_json::Value = serde_wasm_bindgen::from_value(result).unwrap();
    let ours: Vec<f32> = v["probabilities"].as_array().unwrap().iter().map(|c| c["probability"].as_f64().unwrap() as f32).collect();
    assert_close(&ours, &expected());
    assert_eq!(v["backend"], "cpu");

    let bad = screen.classify(b"not an image at all".to_vec()).await.err().expect("refused");
    assert_eq!(bad.kind(), "decode");
    assert!(bad.message().contains("text file"), "{}", bad.message());

    // A plain JS object, as the page passes it.
    let json = serde_wasm_bindgen::Serializer::json_compatible();
    let opts = serde::Serialize::serialize(&serde_json::json!({ "sha256": "0".repeat(64) }), &json).unwrap();
    let tampered = MriScreen::create(model, opts).await.err().expect("refused");
    assert_eq!(tampered.kind(), "model");
    assert!(tampered.message().contains("SHA-256"));
}
