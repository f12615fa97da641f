//! WebGPU (wonnx through wgpu-bridge; natively Vulkan, Mesa's llvmpipe in CI)
//! against tract on the model families we ship, in fp32, fp16, int8 and int4
//! weights, every model the page ships, plus a PyTorch-style third-party graph:
//! max |Δlogit| ≤ 1e-4 · max |logit|.
//!
//! Needs a Vulkan driver (`apt-get install mesa-vulkan-drivers`, which
//! `scripts/setup test` does); without one these tests fail, by design.

mod common;

use mriscreen::block_on;
use mriscreen::model::random::{self, RandomNet};
use mriscreen::CLASSES;
use mriscreen::model::Precision;

fn check(name: &str, bytes: &[u8], classes: Option<&[&str]>) {
    block_on(common::gpu_matches_cpu(name, bytes, classes));
}

fn opts(size: usize, precision: Precision) -> RandomNet {
    let mut o = RandomNet::new(&CLASSES, size, 21);
    o.precision = precision;
    o
}

// Each architecture in fp32 and one quantized storage: the loader expands
// every storage to f32 before either backend sees the graph (src/model/expand.rs),
// so the GPU runs the same graph form for all four; the storage forms
// themselves are checked on both backends by tests/quantized_storage.rs, and
// every shipped variant below.

#[test]
fn mobilenet_v2_full_size_at_224() {
    for p in [Precision::Fp32, Precision::Int4] {
        check(&format!("mobilenet_v2_1.0 {p}"), &random::mobilenet_v2(1.0, &opts(224, p)), None);
    }
}

#[test]
fn densenet_style() {
    // Blocks of 6 and 8 layers: Concats of up to 9 inputs, chained by the normaliser.
    for p in [Precision::Fp32, Precision::Int8] {
        check(&format!("densenet {p}"), &random::densenet(&mriscreen::arch::densenet::Config::custom(&[6, 8], 12), &opts(96, p)), None);
    }
}

#[test]
fn efficientnet_lite0_style() {
    for p in [Precision::Fp32, Precision::Fp16] {
        check(&format!("efficientnet_lite0 {p}"), &random::efficientnet_lite0(&opts(160, p)), None);
    }
}

#[test]
fn third_party_pytorch_style_graph() {
    // Gemm transB=1, bias-free convs, Flatten, symbolic batch, no metadata.
    check("third party", &common::third_party(Default::default()), Some(&["a", "b", "c"]));
}

#[test]
fn every_shipped_model() {
    // The files the page offers (models/manifest.json): fp32 and its compressed variants.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let models = manifest["models"].as_array().unwrap();
    assert!(!models.is_empty());
    for m in models {
        let file = m["file"].as_str().unwrap();
        check(&format!("shipped {file} ({})", m["precision"]), &std::fs::read(dir.join(file)).unwrap(), None);
    }
}

#[test]
fn exported_graphs_with_shape_arithmetic() {
    use common::{FlattenStyle, ThirdParty};
    // tf2onnx's Keras Flatten on an NHWC model, and PyTorch's view(x.size(0), -1) with a weight transposed in the graph.
    let keras = ThirdParty { nhwc: true, flatten: FlattenStyle::ShapeSlice, ..Default::default() };
    check("tf2onnx-style flatten", &common::third_party(keras), Some(&["a", "b", "c"]));
    let torch = ThirdParty { flatten: FlattenStyle::ShapeGather, transposed_weight: true, ..Default::default() };
    check("pytorch-style view and transposed weight", &common::third_party(torch), Some(&["a", "b", "c"]));
}

#[test]
fn the_gpu_profile_times_every_pass_on_the_device() {
    use mriscreen::backend::GpuBackend;
    use mriscreen::model::{LoadOptions, ModelPackage};
    let bytes = random::mobilenet_v2(0.35, &opts(96, Precision::Fp32));
    let package = ModelPackage::read(&bytes, &LoadOptions::default()).unwrap();
    let gpu = block_on(GpuBackend::load(&package)).unwrap_or_else(|e| panic!("{e} (a Vulkan driver is needed: apt-get install mesa-vulkan-drivers)"));
    let input = vec![0.5; package.info.input.len()];
    // A warm-up first: llvmpipe compiles a shader at its first dispatch, inside the pass.
    block_on(gpu.run(&input)).unwrap();
    let p = block_on(gpu.profile(&input, 2)).unwrap_or_else(|e| panic!("on {}: {e}", gpu.adapter()));
    eprintln!("{} runs on {}: {:.2} ms per inference, {:.2} ms in passes", p.runs, gpu.adapter(), p.total_ms, p.in_ops_ms);
    for o in &p.ops {
        eprintln!("  {:<28} {:>3} pass(es) {:>8.3} ms", o.op, o.nodes, o.ms);
    }
    assert_eq!(p.runs, 2);
    // (The passes' sum is not compared with the wall time: llvmpipe's timestamps, unlike
    // SwiftShader's in Chromium, can add up to more than the wall while other tests share the cores.)
    assert!(p.in_ops_ms > 0.0 && p.total_ms > 0.0, "{} ms in passes of {} ms", p.in_ops_ms, p.total_ms);
    // Every pass is named by the ONNX node it computes, and every convolution ran.
    assert!(p.ops.iter().all(|o| !o.op.contains("unknown")), "{:?}", p.ops);
    let convs: usize = p.ops.iter().filter(|o| o.op.starts_with("Conv")).map(|o| o.nodes).sum();
    assert!(convs >= 52, "{convs} convolution passes");
    for kind in ["Conv depthwise 3x3", "Conv 1x1", "Conv 3x3"] {
        assert!(p.ops.iter().any(|o| o.op.starts_with(kind)), "no {kind} in {:?}", p.ops);
    }
    assert!((p.ops.iter().map(|o| o.share).sum::<f64>() - 1.0).abs() < 1e-9);
    // Timing ends with the profile: later runs are plain ones and still agree.
    assert_eq!(block_on(gpu.run(&input)).unwrap().logits.len(), package.info.classes.len());
}
