//! The WebGPU graph normaliser, one test per rewrite. Every rewritten model is
//! also run through tract and must compute what the original computes.

mod common;
use common::classifier_head as head;

use mriscreen::backend::{relative_max_diff, CpuBackend};
use mriscreen::model::builder::{attr_int, attr_ints, attr_string, ConvAttrs, GraphBuilder};
use mriscreen::model::normalise::{for_wonnx, MAX_CONCAT_INPUTS};
use mriscreen::model::pb::{tensor_proto::DataType, ModelProto};
use mriscreen::model::random::{self, RandomNet};
use mriscreen::rng::Rng;
use mriscreen::CLASSES;
use mriscreen::model::{LoadOptions, ModelPackage, Overrides, Precision};
use prost::Message;

fn package(bytes: &[u8], classes: Option<usize>) -> ModelPackage {
    let overrides = Overrides { classes: classes.map(|n| (0..n).map(|i| format!("c{i}")).collect()), ..Default::default() };
    ModelPackage::read(bytes, &LoadOptions { overrides, ..Default::default() }).unwrap()
}

fn logits(p: &ModelPackage, input: &[f32]) -> Vec<f32> {
    CpuBackend::load(p).unwrap().run(input).unwrap().logits
}

/// Normalises, checks the common invariants, and checks tract agrees.
fn normalised(bytes: &[u8], classes: Option<usize>) -> ModelProto {
    let original = package(bytes, classes);
    let model = for_wonnx(&original).unwrap_or_else(|e| panic!("{e}"));
    let graph = model.graph.as_ref().unwrap();
    // Every intermediate has a static shape.
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    for node in &graph.node {
        for o in &node.output {
            if !outputs.contains(&o.as_str()) {
                assert!(graph.value_info.iter().any(|v| &v.name == o), "no value_info for {o}");
            }
        }
    }
    let mut rewritten = original.clone();
    rewritten.proto = model.clone();
    let input = Rng::new(11).vec(original.info.input.len(), -2.0, 2.0);
    let (a, b) = (logits(&original, &input), logits(&package(&model.encode_to_vec(), classes), &input));
    assert!(relative_max_diff(&a, &b) < 1e-5, "rewrite changed the result: {a:?} vs {b:?}");
    model
}


fn ops(m: &ModelProto) -> Vec<String> {
    m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect()
}

#[test]
fn compressed_weights_are_expanded_to_f32() {
    for precision in [Precision::Fp16, Precision::Int8, Precision::Int4] {
        let mut opts = RandomNet::new(&CLASSES, 64, 3);
        opts.precision = precision;
        let m = normalised(&random::mobilenet_v2(0.35, &opts), None);
        let ops = ops(&m);
        assert!(!ops.iter().any(|o| o == "Cast" || o == "DequantizeLinear"), "{precision}: {ops:?}");
        for t in &m.graph.as_ref().unwrap().initializer {
            assert_eq!(t.data_type, DataType::Float as i32, "{precision}: {} is not float32", t.name);
        }
    }
}

#[test]
fn bias_free_convs_get_zero_bias_and_odd_gemm_becomes_conv() {
    // The third-party graph's Gemm has K = 6, which wonnx gets wrong.
    let m = normalised(&common::third_party(Default::default()), Some(3));
    let g = m.graph.as_ref().unwrap();
    for n in g.node.iter().filter(|n| n.op_type == "Conv") {
        assert_eq!(n.input.len(), 3, "{} has no bias", n.name);
    }
    assert!(!ops(&m).contains(&"Gemm".to_string()), "{:?}", ops(&m));
    assert_eq!(g.node.iter().filter(|n| n.op_type == "Conv").count(), 2);
}

#[test]
fn gemm_with_trans_b_is_transposed() {
    // MobileNetV2's classifier: K = 1280, B stored [out, in] with transB=1.
    let m = normalised(&random::mobilenet_v2(0.35, &RandomNet::new(&CLASSES, 64, 1)), None);
    let gemm = m.graph.as_ref().unwrap().node.iter().find(|n| n.op_type == "Gemm").unwrap();
    assert!(gemm.attribute.iter().any(|a| a.name == "transB" && a.i == 0));
}

fn conv_with_auto_pad(mode: &str) -> Vec<u8> {
    let mut b = GraphBuilder::new("auto_pad");
    let x = b.input("input", &[1.into(), 3.into(), 16.into(), 16.into()]);
    let w = b.constant("w", &[4, 3, 3, 3], &Rng::new(1).vec(108, -0.5, 0.5));
    let y = b.node("Conv", &[&x, &w], vec![attr_string("auto_pad", mode), attr_ints("strides", &[2, 2]), attr_ints("kernel_shape", &[3, 3])]);
    head(b, &y, 4)
}

#[test]
fn auto_pad_becomes_explicit_pads() {
    // in 16, stride 2, kernel 3: out 8, total padding (8-1)*2+3-16 = 1.
    for (mode, pads) in [("SAME_UPPER", [0, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0]), ("VALID", [0, 0, 0, 0])] {
        let m = normalised(&conv_with_auto_pad(mode), Some(4));
        let conv = m.graph.as_ref().unwrap().node.iter().find(|n| n.op_type == "Conv").unwrap();
        assert!(!conv.attribute.iter().any(|a| a.name == "auto_pad"), "{mode}");
        let got = &conv.attribute.iter().find(|a| a.name == "pads").unwrap().ints;
        assert_eq!(got.as_slice(), pads, "{mode}");
    }
}

#[test]
fn clip_bounds_become_constants_or_are_refused() {
    let m = normalised(&common::clip_model(Some(0.0), Some(6.0)), Some(3));
    assert!(ops(&m).contains(&"Clip".to_string()));
    // An absent max becomes an explicit huge bound, never "inf".
    let m = normalised(&common::clip_model(Some(-1.5), None), Some(3));
    let clip = m.graph.as_ref().unwrap().node.iter().find(|n| n.op_type == "Clip").unwrap();
    assert!(clip.input.len() == 3 && !clip.input[2].is_empty());
    let e = for_wonnx(&package(&common::clip_model(Some(-0.25), Some(0.25)), Some(3))).unwrap_err().to_string();
    assert!(e.contains("Clip") && e.contains("one decimal"), "{e}");
}

fn dense_concat(n: usize, axis: i64) -> Vec<u8> {
    let mut b = GraphBuilder::new("dense");
    let x = b.input("input", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let mut rng = Rng::new(5);
    let mut parts = vec![x.clone()];
    // Along channels each conv adds 2; along height each must keep all 3.
    let out = if axis == 1 { 2 } else { 3 };
    for i in 0..n - 1 {
        let w = b.constant(&format!("w{i}"), &[out, 3, 3, 3], &rng.vec(out * 27, -0.5, 0.5));
        parts.push(b.conv(&x, &w, None, 3, ConvAttrs::new(1, 1)));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let y = b.node("Concat", &refs, vec![attr_int("axis", axis)]);
    let width = if axis == 1 { 3 + 2 * (n - 1) } else { 3 };
    head(b, &y, width as i64)
}

#[test]
fn long_concats_are_chained_within_the_binding_limit() {
    let m = normalised(&dense_concat(11, 1), Some(23));
    let concats: Vec<_> = m.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == "Concat").collect();
    assert!(concats.len() >= 2, "11 inputs need a chain");
    assert!(concats.iter().all(|c| c.input.len() <= MAX_CONCAT_INPUTS));
}

#[test]
fn concat_that_is_not_flat_is_refused() {
    let e = for_wonnx(&package(&dense_concat(2, 2), Some(3))).unwrap_err().to_string();
    assert!(e.contains("Concat") && e.contains("axis 2"), "{e}");
}

#[test]
fn unsupported_operator_is_refused_by_name() {
    let mut b = GraphBuilder::new("erf");
    let x = b.input("input", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let y = b.node("Erf", &[&x], vec![]);
    let e = for_wonnx(&package(&head(b, &y, 3), Some(3))).unwrap_err().to_string();
    assert!(e.contains("(Erf)") && e.contains("node `erf_"), "{e}");
}

/// Stem conv 3→4 (fp32), then a 1×1 conv 4→2 whose weights come from `w`.
fn int4_net(w: impl FnOnce(&mut GraphBuilder) -> String) -> Vec<u8> {
    let mut b = GraphBuilder::new("int4");
    let x = b.input("input", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let stem = b.constant("stem", &[4, 3, 3, 3], &Rng::new(2).vec(108, -0.5, 0.5));
    let y = b.conv(&x, &stem, None, 3, ConvAttrs::new(1, 1));
    let w = w(&mut b);
    let y = b.conv(&y, &w, None, 1, ConvAttrs::new(1, 0));
    head(b, &y, 2)
}

#[test]
fn packed_int4_weights_with_blocked_scales_are_expanded() {
    use mriscreen::model::builder::raw_tensor;
    use mriscreen::model::tensor_data::pack_4bit;
    // Weights [2 out, 4 in, 1, 1] quantized to int4 in blocks of 2 input
    // channels (opset 21 blocked DequantizeLinear): scale [2, 2, 1, 1].
    let q: Vec<i8> = vec![1, -2, 3, -4, 5, -6, 7, -8];
    let scales = [0.5f32, 0.25, 1.0, 2.0];
    let quantized = int4_net(|b| {
        let wq = b.initializer(raw_tensor("w.int4", DataType::Int4, &[2, 4, 1, 1], pack_4bit(&q)));
        let s = b.constant("w.scale", &[2, 2, 1, 1], &scales);
        b.node("DequantizeLinear", &[&wq, &s], vec![attr_int("axis", 1), attr_int("block_size", 2)])
    });
    let mut proto = ModelProto::decode(&*quantized).unwrap();
    proto.opset_import[0].version = 21;
    let p = package(&proto.encode_to_vec(), Some(2));
    let m = for_wonnx(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(!ops(&m).contains(&"DequantizeLinear".to_string()));
    // q · scale per block, written out by hand.
    let expected = [0.5f32, -1.0, 0.75, -1.0, 5.0, -6.0, 14.0, -16.0];
    let reference = package(&int4_net(|b| b.constant("w", &[2, 4, 1, 1], &expected)), Some(2));
    let input = Rng::new(4).vec(p.info.input.len(), -1.0, 1.0);
    let (a, b) = (logits(&reference, &input), logits(&package(&m.encode_to_vec(), Some(2)), &input));
    assert!(relative_max_diff(&a, &b) < 1e-6, "{a:?} vs {b:?}");
}

#[test]
fn shape_arithmetic_and_constant_transposes_fold_into_initializers() {
    use common::{third_party, FlattenStyle, ThirdParty};
    for (flatten, transposed_weight, nhwc) in [(FlattenStyle::ShapeSlice, false, true), (FlattenStyle::ShapeGather, true, false)] {
        let bytes = third_party(ThirdParty { flatten, transposed_weight, nhwc, ..Default::default() });
        let before = ops(&package(&bytes, Some(3)).proto);
        assert!(before.iter().any(|o| o == "Shape") && before.iter().any(|o| o == "Reshape"), "{before:?}");
        let model = normalised(&bytes, Some(3));
        let after = ops(&model);
        for gone in ["Shape", "Slice", "Gather", "Unsqueeze", "Concat"] {
            assert!(!after.iter().any(|o| o == gone), "{gone} left in {after:?}");
        }
        // The Keras-style input transpose acts on the image, not a constant: it stays.
        assert_eq!(after.iter().filter(|o| *o == "Transpose").count(), usize::from(nhwc), "{after:?}");
        let graph = model.graph.as_ref().unwrap();
        let reshape = graph.node.iter().find(|n| n.op_type == "Reshape").unwrap();
        assert!(graph.initializer.iter().any(|t| t.name == reshape.input[1]), "the computed shape is now an initializer");
    }
}

#[test]
fn activations_read_by_1x1_convolutions_get_a_multiple_of_16_channels() {
    // MobileNetV2-1.0's 24-channel stage (two blocks joined by a residual Add) becomes 32 channels,
    // the extra ones zero (normalised() checks tract gives the same logits on the rewritten graph).
    let m = normalised(&random::mobilenet_v2(1.0, &RandomNet::new(&CLASSES, 64, 5)), None);
    let graph = m.graph.as_ref().unwrap();
    let weight = |name: &str| graph.initializer.iter().find(|t| t.name == name).unwrap().dims.clone();
    let mut pointwise = 0;
    for n in graph.node.iter().filter(|n| n.op_type == "Conv") {
        let kernel = n.attribute.iter().find(|a| a.name == "kernel_shape").map(|a| a.ints.clone());
        let group = n.attribute.iter().find(|a| a.name == "group").map_or(1, |a| a.i);
        if kernel.as_deref() == Some(&[1, 1]) && group == 1 {
            pointwise += 1;
            let w = weight(&n.input[1]);
            assert_eq!(w[1] % 16, 0, "{}: weight {w:?}", n.name);
            assert_eq!(weight(&n.input[2]), [w[0]], "{}: the bias matches the output channels", n.name);
        }
    }
    assert!(pointwise >= 34, "{pointwise} pointwise convolutions");
    // No initializer is left unread.
    let read: std::collections::HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    assert!(graph.initializer.iter().all(|t| read.contains(t.name.as_str())));
}
