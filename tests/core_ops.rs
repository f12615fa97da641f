//! The core operator set (src/model/core_ops.rs), which the page's CPU-only
//! engine parses with: every builder must compute what tract's own registry
//! computes on the same file, and a model with any other operator must be
//! named as outside the set.

mod common;

use common::{classifier_head as head, third_party, FlattenStyle, ThirdParty};
use mriscreen::arch::densenet::Config;
use mriscreen::backend::relative_max_diff;
use mriscreen::model::builder::{attr_float, attr_int, attr_ints, attr_string, GraphBuilder};
use mriscreen::model::parser::{core_onnx, onnx, outside_core};
use mriscreen::model::random::{self, RandomNet};
use mriscreen::model::{LoadOptions, ModelPackage, Overrides, Precision};
use mriscreen::rng::Rng;
use mriscreen::CLASSES;
use prost::Message;
use tract_onnx::prelude::*;

fn package(bytes: &[u8], classes: Option<usize>) -> ModelPackage {
    let overrides = Overrides { classes: classes.map(|n| (0..n).map(|i| format!("c{i}")).collect()), ..Default::default() };
    ModelPackage::read(bytes, &LoadOptions { overrides, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"))
}

/// The first output of `p` on `input`, parsed by `parser` and optimised as the CPU backend does.
fn run(parser: tract_onnx::Onnx, p: &ModelPackage, input: &[f32]) -> TractResult<Vec<f32>> {
    let shape = p.info.input.shape();
    let plan = parser
        .model_for_proto_model(&p.proto)?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let out = plan.run(tvec!(Tensor::from_shape(&shape, input)?.into_tvalue()))?;
    Ok(out[0].to_plain_array_view::<f32>()?.iter().copied().collect())
}

/// Parses `bytes` with both registries and checks they compute the same.
fn agrees(what: &str, bytes: &[u8], classes: Option<usize>) {
    let p = package(bytes, classes);
    let graph = p.proto.graph.as_ref().unwrap();
    assert_eq!(outside_core(graph), Vec::<String>::new(), "{what}: expected a core-only graph");
    let input = Rng::new(5).vec(p.info.input.len(), -2.0, 2.0);
    let full = run(onnx(), &p, &input).unwrap_or_else(|e| panic!("{what}: tract's registry: {e:#}"));
    let core = run(core_onnx(), &p, &input).unwrap_or_else(|e| panic!("{what}: the core set: {e:#}"));
    assert_eq!(full.len(), core.len(), "{what}");
    let d = relative_max_diff(&full, &core);
    assert!(d < 1e-5, "{what}: the core set computes {core:?}, tract's registry {full:?} (relative {d:.2e})");
}


/// Sets every default-domain opset import of an encoded model to `opset`.
fn with_opset(bytes: &[u8], opset: i64) -> Vec<u8> {
    let mut m = mriscreen::model::pb::ModelProto::decode(bytes).unwrap();
    for o in m.opset_import.iter_mut().filter(|o| o.domain.is_empty()) {
        o.version = opset;
    }
    m.encode_to_vec()
}

#[test]
fn the_architectures_we_train_agree_with_tracts_registry() {
    let opts = RandomNet::new(&CLASSES, 64, 3);
    agrees("MobileNetV2-0.35", &random::mobilenet_v2(0.35, &opts), None);
    // Depthwise (grouped) convolutions and Clip as ReLU6 are MobileNetV2's and EfficientNet-Lite0's.
    agrees("EfficientNet-Lite0", &random::efficientnet_lite0(&opts), None);
    // DenseNet: BatchNorm that follows no convolution, Relu, Concat, MaxPool, AveragePool.
    agrees("DenseNet", &random::densenet(&Config::custom(&[2, 2], 8), &opts), None);
    for precision in [Precision::Fp16, Precision::Int8, Precision::Int4] {
        let mut opts = RandomNet::new(&CLASSES, 32, 4);
        opts.precision = precision;
        agrees(&format!("tiny CNN, {precision}"), &random::tiny_cnn(&opts), None);
    }
}

#[test]
fn pytorch_style_exports_agree() {
    // A bias-free convolution, Flatten and Gemm with transB = 1.
    agrees("PyTorch-style classifier", &third_party(ThirdParty::default()), Some(3));
}

fn conv_padded(attrs: Vec<mriscreen::model::pb::AttributeProto>) -> Vec<u8> {
    let mut b = GraphBuilder::new("conv");
    let x = b.input("input", &[1.into(), 3.into(), 15.into(), 15.into()]);
    let w = b.constant("w", &[4, 3, 3, 3], &Rng::new(1).vec(108, -0.5, 0.5));
    let bias = b.constant("bias", &[4], &[0.1, -0.2, 0.3, -0.4]);
    let y = b.node("Conv", &[&x, &w, &bias], attrs);
    head(b, &y, 4)
}

#[test]
fn convolution_padding_strides_and_dilations_agree() {
    for mode in ["SAME_UPPER", "SAME_LOWER", "VALID"] {
        agrees(mode, &conv_padded(vec![attr_string("auto_pad", mode), attr_ints("strides", &[2, 2])]), Some(4));
    }
    agrees("explicit pads", &conv_padded(vec![attr_ints("pads", &[1, 0, 2, 1]), attr_ints("dilations", &[2, 1])]), Some(4));
}

#[test]
fn pools_with_ceil_mode_and_padding_agree() {
    for (op, extra) in [
        ("MaxPool", vec![attr_int("ceil_mode", 1)]),
        ("AveragePool", vec![attr_int("ceil_mode", 1), attr_ints("pads", &[1, 1, 1, 1])]),
        ("AveragePool", vec![attr_int("count_include_pad", 1), attr_ints("pads", &[1, 1, 1, 1])]),
    ] {
        let mut b = GraphBuilder::new("pool");
        let x = b.input("input", &[1.into(), 3.into(), 10.into(), 10.into()]);
        let mut attrs = vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2])];
        let what = format!("{op} {:?}", extra.iter().map(|a| a.name.clone()).collect::<Vec<_>>());
        attrs.extend(extra);
        let y = b.node(op, &[&x], attrs);
        agrees(&what, &head(b, &y, 3), Some(3));
    }
}

#[test]
fn clip_bounds_as_inputs_and_as_attributes_agree() {
    agrees("Clip [-0.5, 0.5]", &common::clip_model(Some(-0.5), Some(0.5)), Some(3));
    agrees("Clip, no lower bound", &common::clip_model(None, Some(0.25)), Some(3));
    agrees("Clip, no upper bound", &common::clip_model(Some(-0.25), None), Some(3));
    // Opset 6 to 10: the bounds are attributes.
    let mut b = GraphBuilder::new("clip6");
    let x = b.input("input", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let y = b.node("Clip", &[&x], vec![attr_float("min", -0.3), attr_float("max", 0.2)]);
    agrees("Clip, opset 10", &with_opset(&head(b, &y, 3), 10), Some(3));
}

#[test]
fn gemm_matmul_reshape_and_element_wise_ops_agree() {
    let mut rng = Rng::new(8);
    let mut b = GraphBuilder::new("mixed");
    let x = b.input("input", &[1.into(), 3.into(), 4.into(), 4.into()]);
    let half = b.constant("half", &[1, 3, 1, 1], &[0.5, 2.0, -1.0]);
    let y = b.node("Mul", &[&x, &half], vec![]);
    let y = b.node("Sub", &[&y, &half], vec![]);
    let y = b.node("Div", &[&y, &half], vec![]);
    let y = b.node("Sigmoid", &[&y], vec![]);
    let y = b.node("Identity", &[&y], vec![]);
    let shape = b.initializer(mriscreen::model::builder::i64_tensor("shape", &[1, 48]));
    let y = b.node("Reshape", &[&y, &shape], vec![]);
    let w = b.constant("w", &[48, 6], &rng.vec(288, -0.3, 0.3));
    let y = b.node("MatMul", &[&y, &w], vec![]);
    // transA on a [6, 1] view of the [1, 6] row; alpha and beta not 1; C of rank 1.
    let col = b.initializer(mriscreen::model::builder::i64_tensor("col", &[6, 1]));
    let y = b.node("Reshape", &[&y, &col], vec![]);
    let w2 = b.constant("w2", &[6, 5], &rng.vec(30, -0.5, 0.5));
    let c = b.constant("c", &[5], &[0.1, 0.2, 0.3, 0.4, 0.5]);
    b.node("Gemm", &[&y, &w2, &c], vec![attr_int("transA", 1), attr_float("alpha", 0.5), attr_float("beta", 2.0)]);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), 5.into()]);
    agrees("Mul, Sub, Div, Sigmoid, Identity, Reshape, MatMul, Gemm", &b.to_bytes(), Some(5));
}

#[test]
fn other_operators_are_named_as_outside_the_core_set() {
    // tf2onnx's Flatten is a shape computation: Shape, Slice, Concat, Reshape.
    let p = package(&third_party(ThirdParty { flatten: FlattenStyle::ShapeSlice, ..Default::default() }), Some(3));
    assert_eq!(outside_core(p.proto.graph.as_ref().unwrap()), ["Shape", "Slice"]);
    // An operator of another domain is outside even under a core name.
    let mut m = p.proto.clone();
    let g = m.graph.as_mut().unwrap();
    g.node[0].domain = "com.example".into();
    let first = g.node[0].op_type.clone();
    assert!(outside_core(g).contains(&first), "{:?}", outside_core(g));
    // The core parser refuses what it lacks by name; it never panics.
    let e = run(core_onnx(), &p, &vec![0.0; p.info.input.len()]).unwrap_err();
    assert!(format!("{e:#}").contains("Shape"), "{e:#}");
}
