//! Post-training quantization of any ONNX model the loader accepts: the
//! weights of every `Conv`, `Gemm` and `MatMul` stored as fp16, int8 (one
//! scale per output channel) or int4 (blocks along the input channels) the
//! way `mriscreen::model::quant` defines them, their biases as float16,
//! BatchNormalization folded into the convolution before it first
//! (`mriscreen::model::fold_bn`), optional bias correction from calibration images
//! ([`bias_correction`]). Any other float tensor is left in fp32 and listed
//! (in an fp16 model every float tensor becomes fp16).
//!
//! The output keeps the parent's metadata, records `mriscreen.precision`,
//! `mriscreen.parent_sha256` and `mriscreen.quantization`, and drops the
//! parent's calibration (temperature, refer threshold, familiarity): a
//! quantized model is calibrated afresh (`mriscreen calibrate`), never
//! trusted with its parent's numbers.
//!
//! Before anything is returned, tract runs the quantized file and an fp32
//! twin holding exactly the values the quantized weights stand for, on the
//! calibration images (or seeded inputs): their logits must agree within
//! 1e-4 of the logit scale, or quantization fails.

pub mod bias_correction;

use anyhow::{bail, Context, Result};
use mriscreen::model::builder::{f32_tensor, ir_version_for};
use mriscreen::model::pb::{self, tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use mriscreen::model::fold_bn;
use mriscreen::model::quant::{self, Axes, Scheme, Storage, Stored};
use mriscreen::model::tensor_data::values_f32;
use mriscreen::model::{keys, LoadOptions, ModelPackage, Precision};
use prost::Message;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What to make.
#[derive(Debug, Clone)]
pub struct Options {
    /// fp16, int8 or int4.
    pub precision: Precision,
    /// Bits and block for int8/int4.
    pub scheme: Scheme,
    /// Preprocessed calibration inputs: for bias correction (when `bias_correction`)
    /// and for the tract check.
    pub calib: Vec<Vec<f32>>,
    pub bias_correction: bool,
    /// How the weights were obtained, for the metadata: `ptq` or `qat`.
    pub method: &'static str,
    /// The fp32 original to record, when it is not the file being quantized
    /// (quantization-aware training quantizes its own intermediate export).
    pub parent_sha256: Option<String>,
}

/// One quantized weight.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub weight: String,
    pub op: String,
    pub node: String,
    pub shape: Vec<usize>,
    /// e.g. `int4, blocks of 32 along axis 1`.
    pub storage: String,
    /// Signal-to-quantization-noise ratio of the stored weights, dB.
    pub sqnr_db: f64,
    pub bias_corrected: bool,
}

/// What quantization did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub precision: Precision,
    pub parent_sha256: String,
    pub method: String,
    pub scheme: Option<Scheme>,
    pub range_setting: String,
    pub folded_batch_norms: usize,
    pub layers: Vec<LayerReport>,
    /// Float tensors left in fp32, with the node that reads them.
    pub left_in_fp32: Vec<String>,
    pub bias_correction_images: usize,
    pub opset: i64,
    pub bytes_in: usize,
    pub bytes_out: usize,
    /// Worst |Δlogit| / max |logit| between the file and its fp32 twin on tract.
    pub check_relative_diff: f32,
    pub check_inputs: usize,
}

/// Where a float tensor is read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Weight { axes: Axes, groups: usize },
    Bias,
    Other,
}

/// Ops whose signature changed between an older opset and the one the
/// quantized storage needs, so the graph cannot simply import the newer one.
fn changed_between(op: &str, from: i64, to: i64) -> bool {
    let changed_at = match op {
        "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp"
        | "ReduceSumSquare" => 18,
        "DFT" | "GridSample" => 20,
        _ => return false,
    };
    from < changed_at && to >= changed_at
}

/// Refuses a model that is already compressed.
fn check_not_quantized(raw: &ModelProto, precision: Precision) -> Result<()> {
    if precision != Precision::Fp32 {
        bail!("the model is already {precision} (mriscreen.precision); quantize its fp32 original instead (mriscreen.parent_sha256 names it, if set)");
    }
    let graph = raw.graph.as_ref().context("the model has no graph")?;
    let compressed = [DataType::Float16, DataType::Int8, DataType::Uint8, DataType::Int4, DataType::Uint4, DataType::Bfloat16];
    if let Some(t) = graph.initializer.iter().find(|t| compressed.iter().any(|&d| t.data_type == d as i32)) {
        bail!("weight `{}` is already stored as {:?}; quantize the fp32 original instead", t.name, DataType::try_from(t.data_type).map(|d| d.as_str_name()).unwrap_or("?"));
    }
    if let Some(n) = graph.node.iter().find(|n| n.op_type == "DequantizeLinear" || n.op_type.starts_with("QLinear")) {
        bail!("node `{}` ({}) shows the model is already quantized; quantize the fp32 original instead", n.name, n.op_type);
    }
    Ok(())
}

/// A node's name, or its first output's where it has none.
fn label(n: &NodeProto) -> String {
    if n.name.is_empty() { n.output.first().cloned().unwrap_or_default() } else { n.name.clone() }
}

fn roles(graph: &pb::GraphProto, inits: &HashMap<String, TensorProto>) -> HashMap<String, (Role, String, String)> {
    let mut roles: HashMap<String, (Role, String, String)> = HashMap::new();
    let float2 = |name: &str, rank: usize| inits.get(name).is_some_and(|t| t.data_type == DataType::Float as i32 && t.dims.len() >= rank);
    let int_attr = |n: &NodeProto, a: &str, d: i64| n.attribute.iter().find(|x| x.name == a).map_or(d, |x| x.i);
    for n in &graph.node {
        for (k, input) in n.input.iter().enumerate() {
            if !inits.contains_key(input) {
                continue;
            }
            let role = match (n.op_type.as_str(), k) {
                ("Conv", 1) if float2(input, 3) => Role::Weight { axes: Axes::OUT_FIRST, groups: int_attr(n, "group", 1).max(1) as usize },
                ("Gemm", 1) if float2(input, 2) && int_attr(n, "transA", 0) == 0 => {
                    Role::Weight { axes: if int_attr(n, "transB", 0) != 0 { Axes::OUT_FIRST } else { Axes::IN_FIRST }, groups: 1 }
                }
                ("MatMul", 1) if float2(input, 2) && inits[input].dims.len() == 2 => Role::Weight { axes: Axes::IN_FIRST, groups: 1 },
                ("Conv", 2) | ("Gemm", 2) => Role::Bias,
                _ => Role::Other,
            };
            // A tensor read in two ways is left alone.
            match roles.get(input) {
                Some((r, _, _)) if *r != role => {
                    roles.insert(input.clone(), (Role::Other, n.op_type.clone(), label(n)));
                }
                Some(_) => {}
                None => {
                    roles.insert(input.clone(), (role, n.op_type.clone(), label(n)));
                }
            }
        }
    }
    roles
}

fn describe_storage(storage: Storage, dims: &[usize]) -> String {
    match storage {
        Storage::Fp32 => "fp32".into(),
        Storage::Fp16 => "fp16".into(),
        Storage::Int { scheme, axes } => match quant::grouping(dims, axes, scheme) {
            quant::Grouping::PerChannel { axis } => format!("int{}, one scale per channel of axis {axis}", scheme.bits),
            quant::Grouping::Blocked { axis, block } => format!("int{}, blocks of {block} along axis {axis}", scheme.bits),
        },
    }
}

/// Quantizes the model in `bytes` (read with `load`); returns the new file
/// and what was done.
pub fn quantize(bytes: &[u8], load: &LoadOptions, opts: &Options) -> Result<(Vec<u8>, Report)> {
    if opts.precision == Precision::Fp32 {
        bail!("choose a precision to quantize to: fp16, int8 or int4");
    }
    if opts.precision != Precision::Fp16 {
        opts.scheme.validate().map_err(anyhow::Error::msg)?;
    }
    let package = ModelPackage::read(bytes, load).context("the model does not load")?;
    let raw = ModelProto::decode(bytes).context("the model does not parse")?;
    check_not_quantized(&raw, package.info.precision)?;
    let mut model = package.proto.clone();
    let folded = fold_bn::fold_batch_norms(&mut model);
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let inits: HashMap<String, TensorProto> = graph.initializer.iter().map(|t| (t.name.clone(), t.clone())).collect();
    let roles = roles(graph, &inits);
    let integer = matches!(opts.precision, Precision::Int8 | Precision::Int4);

    // Bias correction needs each weight layer's input means from the fp32 model.
    let correct = integer && opts.bias_correction && !opts.calib.is_empty();
    if opts.bias_correction && integer && opts.calib.is_empty() {
        bail!("bias correction needs calibration images (--calib DIR)");
    }
    let layer_inputs: HashMap<String, String> = graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul"))
        .filter_map(|n| Some((n.input.get(1)?.clone(), n.input.first()?.clone())))
        .collect();
    let means = if correct {
        let mut values: Vec<String> = layer_inputs.values().cloned().collect::<HashSet<_>>().into_iter().collect();
        values.sort();
        let snapshot = model.clone();
        bias_correction::channel_means(&snapshot, package.info.input.shape(), &opts.calib, &values)?
    } else {
        HashMap::new()
    };
    let graph = model.graph.as_mut().context("the model has no graph")?;

    // Weights first (their errors feed bias correction), then everything else.
    let mut stored: HashMap<String, (Stored, Storage)> = HashMap::new();
    let mut shifts: HashMap<String, Vec<f64>> = HashMap::new();
    let mut layers = Vec::new();
    for t in &graph.initializer {
        let Some((Role::Weight { axes, groups }, op, node)) = roles.get(&t.name).cloned() else { continue };
        let values = values_f32(t).with_context(|| format!("cannot read weight `{}`", t.name))?;
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let storage = match opts.precision {
            Precision::Fp16 => Storage::Fp16,
            _ => Storage::Int { scheme: opts.scheme, axes },
        };
        let s = quant::store(&t.name, &dims, &values, storage);
        let mut corrected = false;
        if let Some(mean) = layer_inputs.get(&t.name).and_then(|x| means.get(x)) {
            let delta: Vec<f32> = s.values.iter().zip(&values).map(|(a, b)| a - b).collect();
            if let Some(shift) = bias_correction::output_shift(&delta, &dims, axes, groups, mean) {
                shifts.insert(node.clone(), shift);
                corrected = true;
            }
        }
        layers.push(LayerReport {
            weight: t.name.clone(),
            op,
            node,
            shape: dims.clone(),
            storage: describe_storage(storage, &dims),
            sqnr_db: quant::sqnr_db(&values, &s.values),
            bias_corrected: corrected,
        });
        stored.insert(t.name.clone(), (s, storage));
    }
    // Layers with a correction but no bias get one.
    let mut new_biases: Vec<TensorProto> = Vec::new();
    for n in graph.node.iter_mut() {
        let Some(shift) = shifts.get(&label(n)) else { continue };
        if n.op_type == "MatMul" {
            let name = label(n);
            layers.iter_mut().filter(|l| l.node == name).for_each(|l| l.bias_corrected = false);
            continue;
        }
        if n.input.get(2).is_none_or(|b| b.is_empty()) {
            let name = format!("{}.bias", n.output.first().cloned().unwrap_or_default());
            new_biases.push(f32_tensor(&name, &[shift.len()], &vec![0.0; shift.len()]));
            n.input.resize(2, String::new());
            n.input.push(name);
        }
    }
    graph.initializer.extend(new_biases);
    let bias_of: HashMap<String, String> =
        graph.node.iter().filter(|n| shifts.contains_key(&label(n)) && n.op_type != "MatMul").filter_map(|n| Some((n.input.get(2)?.clone(), label(n)))).collect();

    let mut left = Vec::new();
    let mut initializers = Vec::new();
    let mut storage_nodes = Vec::new();
    let mut twin = Vec::new();
    let mut opset = 1;
    for t in std::mem::take(&mut graph.initializer) {
        let is_float = t.data_type == DataType::Float as i32;
        let is_bias = roles.get(&t.name).is_some_and(|r| r.0 == Role::Bias) || bias_of.contains_key(&t.name);
        let s = if let Some((s, _)) = stored.remove(&t.name) {
            s
        } else if is_float && is_bias {
            let mut v = values_f32(&t).with_context(|| format!("cannot read bias `{}`", t.name))?;
            if let Some(shift) = bias_of.get(&t.name).and_then(|n| shifts.get(n)) {
                v.iter_mut().zip(shift).for_each(|(b, s)| *b -= *s as f32);
            }
            let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
            quant::store_bias(&t.name, &dims, &v, opts.precision)
        } else if is_float && opts.precision == Precision::Fp16 && t.dims.iter().product::<i64>() > 1 {
            let v = values_f32(&t).with_context(|| format!("cannot read `{}`", t.name))?;
            quant::store(&t.name, &t.dims.iter().map(|&d| d.max(0) as usize).collect::<Vec<_>>(), &v, Storage::Fp16)
        } else {
            if is_float && t.dims.iter().product::<i64>() > 1 && integer {
                let (op, node) = roles.get(&t.name).map(|r| (r.1.clone(), r.2.clone())).unwrap_or_default();
                left.push(format!("`{}` (read by {op} `{node}`)", t.name));
            }
            twin.push(t.clone());
            initializers.push(t);
            continue;
        };
        opset = opset.max(s.opset);
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        twin.push(f32_tensor(&t.name, &dims, &s.values));
        initializers.extend(s.initializers);
        storage_nodes.extend(s.nodes);
    }
    graph.initializer = initializers;
    let storage_count = storage_nodes.len();
    let mut nodes = storage_nodes;
    nodes.append(&mut graph.node);
    graph.node = nodes;

    // The opset the storage needs, unless the graph relies on an older op signature.
    let current = model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(13, |o| o.version);
    let target = current.max(opset);
    if let Some(n) = model.graph.as_ref().and_then(|g| g.node.iter().find(|n| changed_between(&n.op_type, current, target))) {
        bail!(
            "the {} storage needs opset {target}, but node `{}` ({}) was written for opset {current} and its signature changed since; re-export the model at opset {target} (e.g. torch.onnx.export(..., opset_version={target})), or choose --to fp16",
            opts.precision, n.name, n.op_type
        );
    }
    for o in model.opset_import.iter_mut().filter(|o| o.domain.is_empty() || o.domain == "ai.onnx") {
        o.version = target;
    }
    model.ir_version = model.ir_version.max(ir_version_for(target));

    // Metadata: the parent's, minus its calibration, plus what was done.
    let scheme = (opts.precision != Precision::Fp16).then_some(opts.scheme);
    let quantization = serde_json::json!({
        "method": opts.method,
        "bits": match opts.precision { Precision::Fp16 => 16, Precision::Int8 => 8, Precision::Int4 => 4, Precision::Fp32 => 32 },
        "block": scheme.map(|s| s.block),
        "range": match (integer, opts.scheme.range) {
            (false, _) => "none (float16 rounding)",
            (true, quant::Range::Mse) => "per-group clipping value minimising weight MSE",
            (true, quant::Range::MinMax) => "per-group min-max",
        },
        "bias_correction": correct.then_some(opts.calib.len()),
        "batch_norms_folded": folded,
    });
    let mut description = package.info.description();
    description.precision = opts.precision;
    let parent = opts.parent_sha256.clone().unwrap_or_else(|| package.info.sha256.clone());
    description.parent_sha256 = Some(parent.clone());
    description.quantization = Some(quantization.to_string());
    description.temperature = 1.0;
    description.refer_threshold = None;
    description.familiarity = None;
    model.metadata_props.retain(|e| !matches!(e.key.as_str(), keys::REFER_THRESHOLD | keys::FAMILIARITY | keys::TEMPERATURE));
    for (key, value) in description.entries() {
        match model.metadata_props.iter_mut().find(|e| e.key == key) {
            Some(e) => e.value = value,
            None => model.metadata_props.push(pb::StringStringEntryProto { key: key.into(), value }),
        }
    }
    let out = model.encode_to_vec();

    // The check: the file against an fp32 twin holding the values it stands
    // for (the same graph without the storage nodes).
    let mut twin_model = model.clone();
    if let Some(g) = twin_model.graph.as_mut() {
        g.node.drain(..storage_count);
        g.initializer = twin;
    }
    let inputs = check_inputs(&opts.calib, package.info.input.len());
    let diff = compare_on_tract(&out, &twin_model.encode_to_vec(), load, &inputs)?;
    if !(diff <= 1e-4) {
        bail!("the quantized model disagrees with the values it stores: max |Δlogit| is {diff:.2e} of the logit scale on tract (tolerance 1e-4); nothing was written");
    }
    let report = Report {
        precision: opts.precision,
        parent_sha256: parent,
        method: opts.method.into(),
        scheme,
        range_setting: match opts.scheme.range {
            quant::Range::Mse => format!(
                "per group, the clipping value among {} candidates from {:.1} to 1.0 × max|w| with the least squared error; float16 scales",
                quant::CLIP_STEPS + 1,
                quant::CLIP_MIN
            ),
            quant::Range::MinMax => "per group, min–max (max|w|, nothing clipped); float16 scales".into(),
        },
        folded_batch_norms: folded,
        layers,
        left_in_fp32: left,
        bias_correction_images: if correct { opts.calib.len() } else { 0 },
        opset: target,
        bytes_in: bytes.len(),
        bytes_out: out.len(),
        check_relative_diff: diff,
        check_inputs: inputs.len(),
    };
    Ok((out, report))
}

/// The calibration inputs, or (without any) four seeded inputs in [−1, 1].
fn check_inputs(calib: &[Vec<f32>], len: usize) -> Vec<Vec<f32>> {
    if !calib.is_empty() {
        return calib.iter().take(8).cloned().collect();
    }
    let mut rng = mriscreen::rng::Rng::new(0x0C4E);
    (0..4).map(|_| rng.vec(len, -1.0, 1.0)).collect()
}

/// Worst |Δlogit| / max |logit| between two models on tract.
pub fn compare_on_tract(a: &[u8], b: &[u8], load: &LoadOptions, inputs: &[Vec<f32>]) -> Result<f32> {
    let opts = LoadOptions { expected_sha256: None, ..load.clone() };
    let load = |bytes: &[u8], what: &str| -> Result<mriscreen::backend::CpuBackend> {
        let p = ModelPackage::read(bytes, &opts).with_context(|| format!("the {what} does not load"))?;
        mriscreen::backend::CpuBackend::load(&p).with_context(|| format!("tract cannot run the {what}"))
    };
    let (ma, mb) = (load(a, "quantized model")?, load(b, "fp32 twin")?);
    let mut worst = 0f32;
    for x in inputs {
        let (la, lb) = (ma.run(x)?.logits, mb.run(x)?.logits);
        let scale = lb.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = la.iter().zip(&lb).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        worst = worst.max(diff / scale);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mriscreen::model::random::{self, RandomNet};

    fn opts(precision: Precision, scheme: Scheme) -> Options {
        Options { precision, scheme, calib: Vec::new(), bias_correction: false, method: "ptq", parent_sha256: None }
    }

    fn logits(bytes: &[u8], x: &[f32]) -> Vec<f32> {
        let p = ModelPackage::read(bytes, &LoadOptions::default()).unwrap();
        mriscreen::backend::CpuBackend::load(&p).unwrap().run(x).unwrap().logits
    }

    #[test]
    fn mobilenet_with_batch_norm_is_folded_and_quantized_in_every_precision() {
        let mut net = RandomNet::new(&mriscreen::CLASSES, 64, 4);
        net.precision = Precision::Fp32;
        let parent = random::mobilenet_v2(0.35, &net);
        let x = mriscreen::rng::Rng::new(8).vec(3 * 64 * 64, -1.0, 1.0);
        let want = logits(&parent, &x);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        // A random network amplifies weight noise layer after layer, so only
        // the order is asserted there (fp16 closest); trained models are
        // measured by `compare`.
        let mut moved = Vec::new();
        for (precision, scheme, most_bytes) in [
            (Precision::Fp16, Scheme::int8(), 0.51),
            (Precision::Int8, Scheme::int8(), 0.30),
            (Precision::Int4, Scheme::int4(32), 0.20),
        ] {
            let (out, report) = quantize(&parent, &LoadOptions::default(), &opts(precision, scheme)).unwrap();
            assert_eq!(report.folded_batch_norms, 52, "{precision}: every conv's BatchNorm folds");
            assert!(report.check_relative_diff <= 1e-4, "{precision}");
            assert!((out.len() as f64) < most_bytes * parent.len() as f64, "{precision}: {} of {} bytes", out.len(), parent.len());
            assert!(report.layers.len() == 53 && report.left_in_fp32.is_empty(), "{precision}: {report:?}");
            let got = logits(&out, &x);
            let d = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            moved.push(d / scale);
            let info = ModelPackage::read(&out, &LoadOptions::default()).unwrap().info;
            assert_eq!(info.precision, precision);
            assert_eq!(info.parent_sha256.as_deref(), Some(mriscreen::model::sha256_hex(&parent).as_str()));
            assert!(info.quantization.as_deref().is_some_and(|q| q.contains("\"method\":\"ptq\"")), "{:?}", info.quantization);
            assert_eq!((info.temperature, info.refer_threshold), (1.0, None), "calibration is never copied");
            // Quantizing again is refused.
            let e = quantize(&out, &LoadOptions::default(), &opts(Precision::Int8, Scheme::int8())).unwrap_err().to_string();
            assert!(e.contains("already"), "{e}");
        }
        assert!(moved[0] < 0.05 && moved[0] < moved[1] && moved[1] < moved[2], "relative logit change fp16, int8, int4: {moved:?}");
    }

    #[test]
    fn ops_the_quantizer_does_not_compress_are_listed() {
        // DenseNet-style: BatchNormalization after Concat (pre-activation) cannot fold.
        let bytes = random::densenet(&mriscreen::arch::densenet::Config::custom(&[2, 2], 8), &RandomNet::new(&mriscreen::CLASSES, 64, 2));
        let (_, report) = quantize(&bytes, &LoadOptions::default(), &opts(Precision::Int8, Scheme::int8())).unwrap();
        assert!(!report.left_in_fp32.is_empty());
        assert!(report.left_in_fp32.iter().all(|l| l.contains("BatchNormalization")), "{:?}", report.left_in_fp32);
    }

    #[test]
    fn bias_correction_marks_the_layers_it_corrects() {
        let parent = random::mobilenet_v2(0.35, &RandomNet::new(&mriscreen::CLASSES, 64, 4));
        let mut rng = mriscreen::rng::Rng::new(1);
        let calib: Vec<Vec<f32>> = (0..4).map(|_| rng.vec(3 * 64 * 64, -1.0, 1.0)).collect();
        let o = Options { calib: calib.clone(), bias_correction: true, ..opts(Precision::Int4, Scheme::int4(32)) };
        let (out, report) = quantize(&parent, &LoadOptions::default(), &o).unwrap();
        assert_eq!(report.bias_correction_images, 4);
        assert!(report.layers.iter().all(|l| l.bias_corrected), "every conv and the Gemm have a bias to correct");
        let q = ModelPackage::read(&out, &LoadOptions::default()).unwrap().info.quantization.unwrap();
        assert!(q.contains("\"bias_correction\":4"), "{q}");
        // Without images, bias correction is refused rather than skipped.
        let o = Options { calib: Vec::new(), bias_correction: true, ..opts(Precision::Int8, Scheme::int8()) };
        assert!(quantize(&parent, &LoadOptions::default(), &o).unwrap_err().to_string().contains("calibration images"));
    }

    #[test]
    fn the_tract_check_sees_a_difference() {
        let a = random::tiny_cnn(&RandomNet::new(&mriscreen::CLASSES, 64, 1));
        let b = random::tiny_cnn(&RandomNet::new(&mriscreen::CLASSES, 64, 2));
        let inputs = check_inputs(&[], 3 * 64 * 64);
        assert_eq!(compare_on_tract(&a, &a, &LoadOptions::default(), &inputs).unwrap(), 0.0);
        assert!(compare_on_tract(&a, &b, &LoadOptions::default(), &inputs).unwrap() > 1e-2);
    }
}
