//! The wasm build, in headless Chromium (wasm-bindgen-test, run_in_browser):
//! the same model and image give the native build's probabilities within 1e-5,
//! through both the Rust API and the JavaScript boundary in src/web.rs.
#![cfg(target_arch = "wasm32")]

mod common;

use mriscreen::web::MriScreen;
use mriscreen::{Classifier, LoadOptions};
use wasm_bindgen::{JsCast, JsValue};
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
async fn rust_api_matches_native() {
    let (model, image) = common::parity_case();
    let mut c = Classifier::new(&model, &LoadOptions::default()).unwrap();
    let p = c.classify(&image).await.unwrap();
    let ours: Vec<f32> = p.probabilities.iter().map(|c| c.probability).collect();
    assert_close(&ours, &expected());
}

#[wasm_bindgen_test]
async fn js_api_matches_native_and_reports_errors() {
    let (model, image) = common::parity_case();
    let cpu = serde::Serialize::serialize(&serde_json::json!({ "backend": "cpu" }), &serde_wasm_bindgen::Serializer::json_compatible()).unwrap();
    let mut screen = MriScreen::create(model.clone(), cpu).await.map_err(|e| e.message()).unwrap();
    let result = screen.classify(image.clone(), JsValue::UNDEFINED).await.map_err(|e| e.message()).unwrap();
    // The preview crosses as a Uint8Array, not an array of numbers.
    let preview = js_sys::Reflect::get(&result, &"preview".into()).unwrap();
    let pixels = js_sys::Reflect::get(&preview, &"pixels".into()).unwrap();
    assert!(pixels.is_instance_of::<js_sys::Uint8Array>(), "preview.pixels is {pixels:?}");
    // The byte arrays have no JSON form: drop them before reading the rest as JSON.
    for key in ["preview", "heatmap"] {
        js_sys::Reflect::delete_property(result.unchecked_ref::<js_sys::Object>(), &JsValue::from_str(key)).unwrap();
    }
    let v: serde_json::Value = serde_wasm_bindgen::from_value(result).unwrap();
    assert_eq!((v["frames"].as_u64(), v["frame"].as_u64()), (Some(1), Some(0)));
    let ours: Vec<f32> = v["probabilities"].as_array().unwrap().iter().map(|c| c["probability"].as_f64().unwrap() as f32).collect();
    assert_close(&ours, &expected());
    assert_eq!(v["backend"], "cpu");
    // The referral crosses decided: the flag and its typed reasons (this
    // fixture has no calibrated threshold, so the default one applies).
    assert_eq!(v["refer"].as_bool(), Some(!v["refer_reasons"].as_array().unwrap().is_empty()), "{v}");
    for r in v["refer_reasons"].as_array().unwrap() {
        assert!(["low_confidence", "colour", "unfamiliar"].contains(&r["kind"].as_str().unwrap()), "{r}");
    }
    let info: serde_json::Value = serde_wasm_bindgen::from_value(screen.info().map_err(|e| e.message()).unwrap()).unwrap();
    assert_eq!(info["threshold"]["calibrated"], false, "{info}");
    assert!(info["refer_rule"].as_str().unwrap().contains("a default"), "{info}");

    // An ordinary image has only frame 0.
    let frame = serde::Serialize::serialize(&serde_json::json!({ "frame": 1 }), &serde_wasm_bindgen::Serializer::json_compatible()).unwrap();
    let no_frame = screen.classify(image, frame).await.err().expect("refused");
    assert_eq!(no_frame.kind(), "decode");

    let bad = screen.classify(b"not an image at all".to_vec(), JsValue::UNDEFINED).await.err().expect("refused");
    assert_eq!(bad.kind(), "decode");
    assert!(bad.message().contains("text file"), "{}", bad.message());

    // A plain JS object, as the page passes it.
    let json = serde_wasm_bindgen::Serializer::json_compatible();
    let opts = serde::Serialize::serialize(&serde_json::json!({ "sha256": "0".repeat(64) }), &json).unwrap();
    let tampered = MriScreen::create(model, opts).await.err().expect("refused");
    // Its own kind, so the page evicts the cached file without reading the message.
    assert_eq!(tampered.kind(), "hash");
    assert!(tampered.message().contains("SHA-256"));
}

/// Malformed graphs in the browser: refused with kind `model` on both
/// backends, never a trap (the WebGPU path validates with the CPU path's
/// checks before it touches the device).
#[wasm_bindgen_test]
async fn malformed_graphs_are_refused_on_both_backends() {
    use mriscreen::model::pb::{ModelProto, NodeProto};
    use prost::Message;
    let edits: [(&str, fn(&mut mriscreen::model::pb::GraphProto)); 4] = [
        ("a node with no inputs", |g| {
            let k = g.node.iter().position(|n| n.op_type == "Conv").unwrap();
            g.node[k].input.clear();
        }),
        ("a cycle", |g| {
            let last = g.node.last().unwrap().output[0].clone();
            g.node[0].input[0] = last;
        }),
        ("a Cast without its input", |g| g.node.insert(0, NodeProto { op_type: "Cast".into(), output: vec!["c".into()], ..Default::default() })),
        ("external data", |g| g.initializer[0].data_location = Some(1)),
    ];
    let json = serde_wasm_bindgen::Serializer::json_compatible();
    for (what, edit) in edits {
        let mut proto = ModelProto::decode(&common::tiny_model()[..]).unwrap();
        edit(proto.graph.as_mut().unwrap());
        let bytes = proto.encode_to_vec();
        for backend in ["gpu", "cpu"] {
            let opts = serde::Serialize::serialize(&serde_json::json!({ "backend": backend }), &json).unwrap();
            let e = MriScreen::create(bytes.clone(), opts).await.err().unwrap_or_else(|| panic!("{what} on {backend}: accepted"));
            assert_eq!(e.kind(), "model", "{what} on {backend}: {}", e.message());
            assert!(e.message().contains("export it again"), "{what} on {backend}: {}", e.message());
        }
    }
}

// WebGPU (SwiftShader in headless Chromium) against tract, in the browser.
mod webgpu {
    use super::common;
    use mriscreen::model::random::{self, RandomNet};
    use mriscreen::CLASSES;
    use mriscreen::model::Precision;
    use wasm_bindgen_test::*;

    fn opts(size: usize, precision: Precision) -> RandomNet {
        let mut o = RandomNet::new(&CLASSES, size, 21);
        o.precision = precision;
        o
    }

    // fp32 and one quantized storage per architecture, as in tests/gpu_parity.rs
    // (every storage is expanded to f32 before the backends see the graph);
    // tests/browser/variants.test.mjs runs every shipped variant on WebGPU.
    #[wasm_bindgen_test]
    async fn mobilenet_v2_full_size_at_224() {
        for p in [Precision::Fp32, Precision::Int4] {
            common::gpu_matches_cpu(&format!("mobilenet_v2_1.0 {p}"), &random::mobilenet_v2(1.0, &opts(224, p)), None).await;
        }
    }

    #[wasm_bindgen_test]
    async fn densenet_style() {
        for p in [Precision::Fp32, Precision::Int8] {
            common::gpu_matches_cpu(&format!("densenet {p}"), &random::densenet(&mriscreen::arch::densenet::Config::custom(&[6, 8], 12), &opts(96, p)), None).await;
        }
    }

    #[wasm_bindgen_test]
    async fn efficientnet_lite0_style() {
        for p in [Precision::Fp32, Precision::Fp16] {
            common::gpu_matches_cpu(&format!("efficientnet_lite0 {p}"), &random::efficientnet_lite0(&opts(160, p)), None).await;
        }
    }

    #[wasm_bindgen_test]
    async fn third_party_pytorch_style_graph() {
        common::gpu_matches_cpu("third party", &common::third_party(Default::default()), Some(&["a", "b", "c"])).await;
    }
}
