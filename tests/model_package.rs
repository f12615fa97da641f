//! The model package: bad files get specific errors; third-party models run
//! once the user supplies what they lack.

mod common;

use common::{third_party, ThirdParty};
use mriscreen::model::builder::{Dim, GraphBuilder};
use mriscreen::model::{sha256_hex, ModelError, ModelPackage};
use mriscreen::preprocess::Layout;
use mriscreen::{block_on, Classifier, Error, LoadOptions, Overrides};
use prost::Message;

fn read_err(bytes: &[u8], opts: &LoadOptions) -> ModelError {
    ModelPackage::read(bytes, opts).expect_err("must be refused")
}

fn classes(list: &[&str]) -> LoadOptions {
    let classes = Some(list.iter().map(|s| s.to_string()).collect());
    LoadOptions { overrides: Overrides { classes, ..Default::default() }, ..Default::default() }
}

fn model_err(bytes: &[u8], opts: &LoadOptions) -> String {
    match Classifier::new(bytes, opts) {
        Ok(_) => panic!("must be refused"),
        Err(Error::Model(e)) => e.to_string(),
        Err(Error::Inference(mriscreen::InferenceError::Model(e))) => e.to_string(),
        Err(other) => panic!("expected a model error, got {other}"),
    }
}

#[test]
fn empty_model() {
    assert!(matches!(read_err(&[], &LoadOptions::default()), ModelError::Empty));
}

#[test]
fn bytes_that_are_not_protobuf() {
    for bytes in [&b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..], b"<html>not a model</html>"] {
        let e = read_err(bytes, &LoadOptions::default());
        assert!(matches!(e, ModelError::NotOnnx(_) | ModelError::NoGraph), "{e}");
        assert!(e.to_string().contains("ONNX"), "{e}");
    }
}

#[test]
fn two_inputs() {
    let mut b = GraphBuilder::new("two");
    let x = b.input("a", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let y = b.input("b", &[1.into(), 3.into(), 8.into(), 8.into()]);
    b.add(&x, &y);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), 3.into(), 8.into(), 8.into()]);
    let e = read_err(&b.to_bytes(), &classes(&["x"]));
    assert!(matches!(e, ModelError::Inputs { count: 2, .. }), "{e}");
    assert!(e.to_string().contains("`a`, `b`"), "{e}");
}

#[test]
fn output_width_differs_from_class_list() {
    // Declared output [batch, 3] against 4 classes: refused at read time.
    let e = read_err(&third_party(ThirdParty::default()), &classes(&["a", "b", "c", "d"]));
    assert!(matches!(e, ModelError::ClassCount { outputs: 3, classes: 4, .. }), "{e}");
    // Undeclared output shape: tract's type inference finds the width.
    let undeclared = third_party(ThirdParty { declare_output: false, ..Default::default() });
    let msg = model_err(&undeclared, &classes(&["a", "b"]));
    assert!(msg.contains("gives 3 scores per image but 2 classes"), "{msg}");
    // The mriscreen metadata itself can be wrong, too.
    let msg = model_err(&common::tiny_model(), &classes(&["a", "b", "c"]));
    assert!(msg.contains("4 scores per image but 3 classes"), "{msg}");
}

#[test]
fn sha256_mismatch_and_match() {
    let bytes = common::tiny_model();
    let wrong = LoadOptions { expected_sha256: Some("0".repeat(64)), ..Default::default() };
    let e = read_err(&bytes, &wrong);
    assert!(matches!(e, ModelError::HashMismatch { .. }), "{e}");
    assert!(e.to_string().contains("download it again"), "{e}");
    let right = LoadOptions { expected_sha256: Some(sha256_hex(&bytes).to_uppercase()), ..Default::default() };
    assert!(ModelPackage::read(&bytes, &right).is_ok());
    let malformed = LoadOptions { expected_sha256: Some("abc".into()), ..Default::default() };
    assert!(matches!(read_err(&bytes, &malformed), ModelError::BadExpectedHash(_)));
}

#[test]
fn a_hash_computed_by_the_caller_is_used_and_checked() {
    let bytes = common::tiny_model();
    let sha = sha256_hex(&bytes);
    // The caller's digest stands for the bytes: it is what the manifest's hash is held against.
    let both = |computed: &str, expected: &str| LoadOptions {
        computed_sha256: Some(computed.into()),
        expected_sha256: Some(expected.into()),
        ..Default::default()
    };
    assert_eq!(ModelPackage::read(&bytes, &both(&sha.to_uppercase(), &sha)).expect("loads").info.sha256, sha);
    assert!(matches!(read_err(&bytes, &both(&"0".repeat(64), &sha)), ModelError::HashMismatch { .. }));
    let malformed = LoadOptions { computed_sha256: Some("not a digest".into()), ..Default::default() };
    let e = read_err(&bytes, &malformed);
    assert!(matches!(e, ModelError::BadComputedHash(_)), "{e}");
}

#[test]
fn third_party_without_classes_names_the_flag() {
    let e = read_err(&third_party(ThirdParty::default()), &LoadOptions::default());
    assert!(matches!(e, ModelError::MissingClasses), "{e}");
    assert!(e.to_string().contains("--classes"), "{e}");
}

#[test]
fn third_party_runs_with_supplied_classes() {
    let mut c = Classifier::new(&third_party(ThirdParty::default()), &classes(&["cat", "dog", "owl"])).unwrap();
    assert_eq!(c.info().logits_name, "output");
    assert_eq!((c.info().input.width, c.info().input.height), (32, 32));
    assert!(!c.info().assumed.is_empty(), "defaults must be recorded");
    let p = block_on(c.classify(&common::png(common::phantom(40, 40)))).unwrap();
    assert_eq!(p.probabilities.len(), 3);
}

#[test]
fn nhwc_input_is_detected_and_agrees_with_nchw() {
    let mut nhwc = Classifier::new(&third_party(ThirdParty { nhwc: true, ..Default::default() }), &classes(&["a", "b", "c"])).unwrap();
    assert_eq!(nhwc.info().input.layout, Layout::Nhwc);
    let mut nchw = Classifier::new(&third_party(ThirdParty::default()), &classes(&["a", "b", "c"])).unwrap();
    let img = common::png(common::phantom(50, 40));
    let (a, b) = (block_on(nhwc.classify(&img)).unwrap(), block_on(nchw.classify(&img)).unwrap());
    for (x, y) in a.logits.iter().zip(&b.logits) {
        assert!((x - y).abs() < 1e-5, "{:?} vs {:?}", a.logits, b.logits);
    }
}

#[test]
fn unfixed_input_size_needs_the_flag() {
    let free = third_party(ThirdParty { fixed_size: false, ..Default::default() });
    let e = read_err(&free, &classes(&["a", "b", "c"]));
    assert!(matches!(e, ModelError::UnknownInputSize { .. }), "{e}");
    assert!(e.to_string().contains("--input-size"), "{e}");
    let mut opts = classes(&["a", "b", "c"]);
    opts.overrides.input_size = Some((48, 48));
    let c = Classifier::new(&free, &opts).unwrap();
    assert_eq!(c.info().input.shape(), [1, 3, 48, 48]);
    // A size that contradicts a fixed input is refused.
    let mut opts = classes(&["a", "b", "c"]);
    opts.overrides.input_size = Some((64, 64));
    let e = read_err(&third_party(ThirdParty::default()), &opts);
    assert!(matches!(e, ModelError::InputSizeConflict { .. }), "{e}");
}

#[test]
fn custom_domain_opset_and_input_type_are_refused() {
    let mut proto = mriscreen::model::pb::ModelProto::decode(&*common::tiny_model()).unwrap();
    let mut custom = proto.clone();
    let node = &mut custom.graph.as_mut().unwrap().node[0];
    node.domain = "com.microsoft".into();
    let e = read_err(&custom.encode_to_vec(), &LoadOptions::default());
    assert!(matches!(e, ModelError::CustomOp { .. }), "{e}");

    let mut old = proto.clone();
    old.opset_import[0].version = 3;
    let e = read_err(&old.encode_to_vec(), &LoadOptions::default());
    assert!(e.to_string().contains("opset 3"), "{e}");

    let input = &mut proto.graph.as_mut().unwrap().input[0];
    *input = mriscreen::model::builder::value_info(
        "input",
        mriscreen::model::pb::tensor_proto::DataType::Uint8,
        &[Dim::Fixed(1), 3.into(), 64.into(), 64.into()],
    );
    let e = read_err(&proto.encode_to_vec(), &LoadOptions::default());
    assert!(matches!(e, ModelError::InputType { .. }), "{e}");
    assert!(e.to_string().contains("UINT8"), "{e}");
}

#[test]
fn fixed_batch_above_one_is_refused() {
    let mut proto = mriscreen::model::pb::ModelProto::decode(&*common::tiny_model()).unwrap();
    proto.graph.as_mut().unwrap().input[0] = mriscreen::model::builder::value_info(
        "input",
        mriscreen::model::pb::tensor_proto::DataType::Float,
        &[Dim::Fixed(8), 3.into(), 64.into(), 64.into()],
    );
    let e = read_err(&proto.encode_to_vec(), &LoadOptions::default());
    assert!(matches!(e, ModelError::Batch { batch: 8, .. }), "{e}");
}

#[test]
fn metadata_is_exposed() {
    let c = Classifier::new(&common::tiny_model(), &LoadOptions::default()).unwrap();
    let info = c.info();
    assert_eq!(info.classes, ["glioma", "meningioma", "notumor", "pituitary"]);
    assert_eq!(info.arch.as_deref(), Some("tiny_cnn"));
    assert!(info.is_untrained());
    assert_eq!(info.features_name.as_deref(), Some("features"));
    assert!(info.assumed.is_empty(), "{:?}", info.assumed);
}

/// Each refusal says what to do, not only what is wrong.
#[test]
fn size_and_shape_refusals_say_what_to_do() {
    let model = common::tiny_model();
    let e = read_err(&model, &LoadOptions { max_bytes: 100, ..Default::default() });
    assert!(matches!(e, ModelError::TooLarge { limit: 100, .. }), "{e}");
    assert!(e.to_string().contains("use a smaller model"), "{e}");

    let mut proto = mriscreen::model::pb::ModelProto::decode(&*model).unwrap();
    let mut grey = proto.clone();
    grey.graph.as_mut().unwrap().input[0] = mriscreen::model::builder::value_info(
        "input",
        mriscreen::model::pb::tensor_proto::DataType::Float,
        &[Dim::Fixed(1), 64.into(), 64.into()],
    );
    let e = read_err(&grey.encode_to_vec(), &LoadOptions::default());
    assert!(matches!(e, ModelError::InputShape { .. }), "{e}");
    assert!(e.to_string().contains("re-export the model with one 3-channel image input"), "{e}");

    let out = &mut proto.graph.as_mut().unwrap().output[0];
    *out = mriscreen::model::builder::value_info(&out.name.clone(), mriscreen::model::pb::tensor_proto::DataType::Float, &[Dim::Fixed(1), 4.into(), 8.into(), 8.into()]);
    let e = read_err(&proto.encode_to_vec(), &LoadOptions::default());
    assert!(matches!(e, ModelError::OutputShape { .. }), "{e}");
    assert!(e.to_string().contains("re-export the classifier"), "{e}");
}

#[test]
fn gpu_failures_point_to_the_cpu() {
    use mriscreen::{BackendKind, InferenceError};
    for e in [
        InferenceError::GpuUnavailable("no adapter".into()),
        InferenceError::GpuUnsupported("op X".into()),
        InferenceError::Gpu("device lost".into()),
        InferenceError::SelfCheck { max_diff: 1.0, tolerance: 1e-3 },
        InferenceError::Run { backend: BackendKind::Gpu, message: "oom".into() },
    ] {
        let m = e.to_string();
        assert!(m.contains("--backend cpu") && m.contains("?backend=cpu"), "{m}");
    }
    let m = InferenceError::Run { backend: BackendKind::Cpu, message: "shape".into() }.to_string();
    assert!(m.contains("re-export") && !m.contains("--backend cpu"), "{m}");
}

#[test]
fn a_hash_mismatch_has_its_own_kind() {
    let model = common::tiny_model();
    let opts = LoadOptions { expected_sha256: Some("0".repeat(64)), ..Default::default() };
    let e = Classifier::new(&model, &opts).err().expect("refused");
    assert_eq!(e.kind(), "hash", "{e}");
    assert_eq!(Classifier::new(b"junk", &LoadOptions::default()).err().expect("refused").kind(), "model");
}

/// A valid model, changed by `edit`, must be refused with a message naming `needle`; never a panic.
fn refused_structure(what: &str, needle: &str, edit: impl FnOnce(&mut mriscreen::model::pb::GraphProto)) {
    let mut proto = mriscreen::model::pb::ModelProto::decode(&common::tiny_model()[..]).unwrap();
    edit(proto.graph.as_mut().unwrap());
    let bytes = proto.encode_to_vec();
    let e = std::panic::catch_unwind(|| ModelPackage::read(&bytes, &LoadOptions::default()))
        .unwrap_or_else(|_| panic!("{what}: the loader panicked"))
        .expect_err(what)
        .to_string();
    assert!(e.contains(needle) && e.contains("export it again"), "{what}: {e}");
    // The classifier refuses it the same way on the CPU, and on WebGPU before it touches the device.
    assert!(model_err(&bytes, &LoadOptions::default()).contains(needle), "{what}");
    for choice in [mriscreen::BackendChoice::Gpu, mriscreen::BackendChoice::Auto] {
        let e = std::panic::catch_unwind(|| block_on(Classifier::load(&bytes, &LoadOptions::default(), choice)))
            .unwrap_or_else(|_| panic!("{what}: the {choice:?} backend panicked"))
            .err()
            .unwrap_or_else(|| panic!("{what}: the {choice:?} backend accepted it"));
        assert!(e.to_string().contains(needle) && e.kind() == "model", "{what} on {choice:?}: {e}");
    }
}

#[test]
fn malformed_graphs_are_refused_with_the_node_named() {
    use mriscreen::model::pb::{tensor_proto::DataType, NodeProto};
    let first_conv = |g: &mut mriscreen::model::pb::GraphProto| g.node.iter().position(|n| n.op_type == "Conv").unwrap();
    refused_structure("a node with no inputs", "takes 2 to 3 inputs", |g| {
        let k = first_conv(g);
        g.node[k].input.clear();
    });
    refused_structure("a node with no outputs", "has no outputs", |g| {
        let k = first_conv(g);
        g.node[k].output.clear();
    });
    refused_structure("a dangling name", "no graph input, initializer or earlier node defines", |g| {
        let k = first_conv(g);
        g.node[k].input[0] = "nowhere".into();
    });
    refused_structure("a cycle", "(a dangling name, or a cycle)", |g| {
        let last = g.node.last().unwrap().output[0].clone();
        g.node[0].input[0] = last;
    });
    refused_structure("two nodes writing one name", "already defined", |g| {
        let out = g.node[0].output[0].clone();
        g.node[1].output[0] = out;
    });
    refused_structure("a Cast without its input", "`Cast` takes 1 inputs", |g| {
        g.node.insert(0, NodeProto { op_type: "Cast".into(), output: vec!["c".into()], ..Default::default() });
    });
    refused_structure("a DequantizeLinear without inputs", "`DequantizeLinear` takes 2 to 3", |g| {
        g.node.insert(0, NodeProto { op_type: "DequantizeLinear".into(), input: vec![String::new(), String::new()], output: vec!["d".into()], ..Default::default() });
    });
    refused_structure("a negative initializer dim", "negative size", |g| g.initializer[0].dims[0] = -3);
    refused_structure("a huge initializer", "over the limit", |g| g.initializer[0].dims = vec![1 << 20, 1 << 20, 4]);
    refused_structure("an initializer with more bytes than its dims", "bytes but its dims", |g| {
        let t = g.initializer.iter_mut().find(|t| t.data_type == DataType::Float as i32 && !t.raw_data.is_empty()).unwrap();
        t.raw_data.extend_from_slice(&[0; 16]);
    });
    refused_structure("external data", "external file", |g| g.initializer[0].data_location = Some(1));
    refused_structure("an output nothing computes", "nothing in the graph computes it", |g| g.output[0].name = "ghost".into());
    refused_structure("an empty graph", "has no nodes", |g| g.node.clear());
    // Window attributes that do not fit together (found by the normaliser fuzz target: tract indexed one by the other).
    let conv_attr = |g: &mut mriscreen::model::pb::GraphProto, name: &str, ints: Vec<i64>| {
        let k = first_conv(g);
        g.node[k].attribute.retain(|a| a.name != name);
        g.node[k].attribute.push(mriscreen::model::pb::AttributeProto { name: name.into(), ints, r#type: 7, ..Default::default() });
    };
    refused_structure("strides shorter than the kernel", "its strides has 1 values; 2 spatial axes need 2", |g| conv_attr(g, "strides", vec![2]));
    refused_structure("a zero stride", "its strides holds 0", |g| conv_attr(g, "strides", vec![0, 1]));
    refused_structure("pads for one axis", "its pads has 2 values; 2 spatial axes need 4", |g| conv_attr(g, "pads", vec![1, 1]));
    refused_structure("a negative pad", "its pads holds -1", |g| conv_attr(g, "pads", vec![0, -1, 0, 0]));
    // Tensors of a type tract cannot read from raw bytes (found by fuzzing: tract panicked).
    refused_structure("a string initializer in raw bytes", "its data type (STRING) cannot be stored as raw bytes", |g| {
        let t = g.initializer.iter_mut().find(|t| !t.raw_data.is_empty()).unwrap();
        t.data_type = DataType::String as i32;
    });
    refused_structure("a Constant holding a string in raw bytes", "attribute value", |g| {
        let t = mriscreen::model::pb::TensorProto { data_type: DataType::String as i32, dims: vec![2], raw_data: vec![1; 16], ..Default::default() };
        let value = mriscreen::model::pb::AttributeProto { name: "value".into(), t: Some(t), r#type: 4, ..Default::default() };
        g.node.insert(0, NodeProto { op_type: "Constant".into(), output: vec!["k".into()], attribute: vec![value], ..Default::default() });
    });
}

#[test]
fn a_flatten_axis_beyond_the_rank_is_an_error_on_every_backend() {
    // Found by fuzzing: tract sliced the shape at the axis and panicked. The rank
    // is known only during type inference, so this is a load error, not a structure one.
    let mut proto = mriscreen::model::pb::ModelProto::decode(&common::tiny_model()[..]).unwrap();
    let g = proto.graph.as_mut().unwrap();
    let flatten = g.node.iter_mut().find(|n| n.op_type == "Flatten").expect("the tiny model has a Flatten");
    flatten.attribute.retain(|a| a.name != "axis");
    flatten.attribute.push(mriscreen::model::pb::AttributeProto { name: "axis".into(), i: 9, r#type: 2, ..Default::default() });
    let bytes = proto.encode_to_vec();
    for choice in [mriscreen::BackendChoice::Cpu, mriscreen::BackendChoice::Gpu, mriscreen::BackendChoice::Auto] {
        let e = std::panic::catch_unwind(|| block_on(Classifier::load(&bytes, &LoadOptions::default(), choice)))
            .unwrap_or_else(|_| panic!("the {choice:?} backend panicked"))
            .err()
            .unwrap_or_else(|| panic!("the {choice:?} backend accepted it"));
        assert!(e.to_string().contains("Flatten's axis is 9, outside -4..=4"), "{choice:?}: {e}");
    }
}

#[test]
fn absurd_input_dims_are_refused() {
    use mriscreen::model::pb::{tensor_shape_proto::dimension::Value, type_proto};
    for (v, needle) in [(0i64, "dimension of 0"), (-5, ""), (1 << 40, "")] {
        let mut proto = mriscreen::model::pb::ModelProto::decode(&common::tiny_model()[..]).unwrap();
        let input = &mut proto.graph.as_mut().unwrap().input[0];
        let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else { panic!() };
        t.shape.as_mut().unwrap().dim[2].value = Some(Value::DimValue(v));
        let bytes = proto.encode_to_vec();
        let e = std::panic::catch_unwind(|| ModelPackage::read(&bytes, &LoadOptions::default())).expect("no panic").expect_err("refused");
        assert!(e.to_string().contains(needle), "{v}: {e}");
    }
}
