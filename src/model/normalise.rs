//! The WebGPU graph normaliser: rewrites any model the loader accepts into
//! the form wonnx 0.5.1 computes correctly, or refuses it naming the op and
//! node. Each rewrite answers one fact measured about wonnx (docs/architecture.md,
//! "Facts measured about wonnx 0.5.1"):
//!
//! 1. (Done for both backends when the model is read, `super::expand`:)
//!    `Constant` nodes become initializers, and `Cast` / `DequantizeLinear`
//!    of constant weights (fp16, per-axis or blocked int8, packed int4) are
//!    evaluated into f32 — wonnx has no FLOAT16, INT8 or DequantizeLinear.
//! 2. Every intermediate gets a static shape in `value_info` (tract's shape
//!    inference with the input pinned to batch 1) — wonnx needs them all.
//! 3. A `Conv` without bias gets a zero bias — wonnx computes 3×3 bias-free
//!    convolutions wrongly.
//! 4. `Gemm` with `transB=1` gets its constant B transposed and `transB=0`;
//!    a `Gemm` or `MatMul` whose inner dimension is not a multiple of 4
//!    (which wonnx gets wrong) becomes Reshape → 1×1 Conv → Reshape.
//! 5. `auto_pad` SAME_UPPER/SAME_LOWER/VALID becomes explicit `pads`.
//! 6. `Clip` bounds become explicit constants (wonnx prints them with one
//!    decimal, so bounds that one decimal cannot express are refused, and an
//!    absent bound, printed as `inf`, becomes ±3e38).
//! 7. `Concat` (which wonnx performs flat, ignoring `axis`) is kept only where
//!    flat is right (every dimension before the axis is 1) and is split into a
//!    chain of at most [`MAX_CONCAT_INPUTS`] inputs (one storage binding each).
//! 8. Any op wonnx does not implement is refused.
//!
//! And for speed, not correctness: BatchNormalization after a convolution is
//! folded into it (`super::fold_bn`), and activations whose channel count is
//! not a multiple of 16 get zero channels up to the next multiple where every
//! reader is a convolution, so that the 1×1 ones run wonnx's vectorised
//! kernel instead of its per-element one ([`pad_channels`]).
//!
//! Before the rewrites, every node whose outputs tract's analysis knows as
//! constants (it evaluates an op whose inputs are all known, with the input
//! shape pinned) becomes initializers, as onnx-simplifier does: exporters
//! write Flatten as Shape → Slice/Gather → Concat → Reshape on static
//! shapes (tf2onnx, older PyTorch), and transpose constant weights in the
//! graph; wonnx implements neither Slice nor shape arithmetic.

use super::pb::{self, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};
use super::tensor_data::{le_bytes, values_f32};
use super::builder::{f32_tensor, raw_tensor, value_info, Dim};
use super::ModelPackage;
use std::collections::{HashMap, HashSet};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;
use tract_onnx::tract_hir::infer::Factoid;

/// Most inputs one `Concat` may have after normalisation (wonnx binds each
/// input and the output as a storage buffer; 8 per stage by default).
pub const MAX_CONCAT_INPUTS: usize = 6;

/// Why a model cannot run on the WebGPU backend (the CPU backend may still run it).
#[derive(Debug, thiserror::Error)]
pub enum NormaliseError {
    #[error("node `{node}` ({op}): {reason}")]
    Node { node: String, op: String, reason: String },
    #[error("shape inference failed: {0}")]
    Shapes(String),
}

/// Ops wonnx 0.5.1 compiles (src/compiler.rs) or folds away (src/optimizer.rs).
const SUPPORTED: &[&str] = &[
    "Reshape", "Dropout", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Abs", "Acos", "Asin", "Atan", "Ceil", "Cos",
    "Cosh", "Exp", "Floor", "Log", "Round", "Sign", "Sin", "Sinh", "Sqrt", "Tan", "Tanh", "Reciprocal", "Acosh",
    "Asinh", "Atanh", "Neg", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "OneHot", "Gather", "Cast", "Softmax", "BatchNormalization",
    "Concat", "Resize", "Sum", "Split", "Pad", "Transpose", "Add", "And", "Div", "Equal", "Greater", "GreaterOrEqual",
    "Less", "LessOrEqual", "Mod", "Mul", "Or", "Sub", "Pow", "PRelu", "Relu", "Sigmoid", "Softsign", "Softplus", "Clip",
    "Celu", "Elu", "LeakyRelu", "MaxPool", "AveragePool", "Conv", "GlobalAveragePool", "Gemm", "MatMul", "Shape",
];

fn refuse(node: &NodeProto, reason: impl Into<String>) -> NormaliseError {
    let name = if node.name.is_empty() { node.output.first().cloned().unwrap_or_default() } else { node.name.clone() };
    NormaliseError::Node { node: name, op: node.op_type.clone(), reason: reason.into() }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_ints_or(node: &NodeProto, name: &str, default: Vec<i64>) -> Vec<i64> {
    attr(node, name).map(|a| a.ints.clone()).unwrap_or(default)
}

fn set_attr(node: &mut NodeProto, a: AttributeProto) {
    node.attribute.retain(|x| x.name != a.name);
    node.attribute.push(a);
}

/// The normalised model, ready for wonnx.
pub fn for_wonnx(package: &ModelPackage) -> Result<pb::ModelProto, NormaliseError> {
    let mut model = package.proto.clone();
    // Each BatchNormalization left after a convolution would be a compute pass
    // of its own over the activations (a third of a random-weight
    // MobileNetV2's time on SwiftShader: README, "Where the time goes").
    crate::model::fold_bn::fold_batch_norms(&mut model);
    let input_shape: Vec<usize> = package.info.input.shape().to_vec();
    let mut graph = model.graph.take().ok_or_else(|| NormaliseError::Shapes("the model has no graph".into()))?;
    let mut inits: HashMap<String, TensorProto> = graph.initializer.drain(..).map(|t| (t.name.clone(), t)).collect();
    graph.input.retain(|i| !inits.contains_key(&i.name));

    let used: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    inits.retain(|name, _| used.contains(name.as_str()));
    graph.initializer = inits.values().cloned().collect();

    model.graph = Some(graph);
    let (mut shapes, constants) = infer_facts(&model, &input_shape)?;
    let mut graph = model.graph.take().ok_or_else(|| NormaliseError::Shapes("the model has no graph".into()))?;
    fold_constants(&mut graph, &mut inits, &constants);
    let mut extra_shapes: Vec<(String, Vec<usize>)> = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        // wonnx labels each compute pass with its node's name (profiles report them).
        if node.name.is_empty() {
            node.name = node.output.first().cloned().unwrap_or_default();
        }
        if !SUPPORTED.contains(&node.op_type.as_str()) || !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(refuse(&node, "the WebGPU backend (wonnx) does not implement this operator"));
        }
        match node.op_type.as_str() {
            "Conv" => {
                explicit_pads(&mut node, &shapes, &inits)?;
                if node.input.len() < 3 || node.input[2].is_empty() {
                    let out = shape_of(&shapes, &node.output[0]).ok_or_else(|| refuse(&node, "output shape unknown"))?;
                    let name = format!("{}.zero_bias", node.output[0]);
                    let bias = f32_tensor(&name, &[out[1]], &vec![0.0; out[1]]);
                    inits.insert(name.clone(), bias.clone());
                    graph.initializer.push(bias);
                    node.input.truncate(2);
                    node.input.push(name);
                }
            }
            "MaxPool" | "AveragePool" => explicit_pads(&mut node, &shapes, &inits)?,
            "Gemm" => {
                gemm_trans_b(&mut node, &mut inits, &mut graph.initializer)?;
                if let Some(rewritten) = gemm_as_conv(&node, &shapes, &mut inits, &mut graph.initializer, &mut extra_shapes)? {
                    nodes.extend(rewritten);
                    continue;
                }
            }
            "MatMul" => {
                if let Some(rewritten) = gemm_as_conv(&node, &shapes, &mut inits, &mut graph.initializer, &mut extra_shapes)? {
                    nodes.extend(rewritten);
                    continue;
                }
            }
            "Clip" => clip_bounds(&mut node, &mut inits, &mut graph.initializer)?,
            "Concat" => {
                split_concat(node, &shapes, &mut nodes, &mut extra_shapes)?;
                continue;
            }
            _ => {}
        }
        nodes.push(node);
    }
    graph.node = nodes;
    pad_channels(&mut graph, &mut inits, &mut shapes);

    let pinned: Vec<Dim> = input_shape.iter().map(|&d| Dim::Fixed(d as i64)).collect();
    graph.input = vec![value_info(&package.info.input_name, DataType::Float, &pinned)];
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let typed = |name: &str, dims: &[usize]| {
        let d: Vec<Dim> = dims.iter().map(|&x| Dim::Fixed(x as i64)).collect();
        value_info(name, DataType::Float, &d)
    };
    graph.value_info = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter())
        .filter(|o| !outputs.contains(*o))
        .filter_map(|o| {
            shape_of(&shapes, o).or_else(|| extra_shapes.iter().find(|(n, _)| n == o).map(|(_, s)| s.clone())).map(|s| typed(o, &s))
        })
        .collect();
    for out in &mut graph.output {
        let dims = shape_of(&shapes, &out.name).ok_or_else(|| NormaliseError::Shapes(format!("output `{}` has no inferred shape", out.name)))?;
        *out = typed(&out.name, &dims);
    }
    model.graph = Some(graph);
    Ok(model)
}

/// wonnx's vectorised 1×1 convolution reads input channels 16 at a time.
const CHANNEL_MULTIPLE: usize = 16;

/// Pads activations of C channels (C not a multiple of 16) with zero channels
/// up to the next multiple, where that is exact and lets a 1×1 convolution
/// run wonnx's vectorised kernel (it needs a multiple of 16 input channels;
/// the per-element kernel it falls back to took 27 % of MobileNetV2-1.0's
/// time on SwiftShader for its two 24-channel expansions, 2026-12-06). A
/// group of activations is padded together: those joined by `Add`, each
/// produced by a convolution (given zero output channels: zero weights and
/// bias) or by such an `Add`, and read only by convolutions (given zero
/// input-channel weights) and such `Add`s; never a graph output. A zero
/// channel stays zero through all of them, so no result changes.
fn pad_channels(graph: &mut pb::GraphProto, inits: &mut HashMap<String, TensorProto>, shapes: &mut HashMap<String, Vec<usize>>) {
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, n) in graph.node.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), k);
        }
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            readers.entry(i.as_str()).or_default().push(k);
        }
    }
    let plain_conv = |n: &NodeProto| {
        n.op_type == "Conv" && attr(n, "group").map_or(1, |a| a.i) == 1 && n.input.get(1).is_some_and(|w| inits.contains_key(w))
    };
    let channels = |t: &str| shapes.get(t).filter(|s| s.len() == 4).map(|s| s[1]);
    // (activations, convolutions writing them, convolutions reading them) of each group.
    let mut groups: Vec<(Vec<String>, Vec<usize>, Vec<usize>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for n in &graph.node {
        let Some(start) = n.output.first().map(String::as_str) else { continue };
        if !plain_conv(n) || seen.contains(start) || channels(start).is_none_or(|c| c % CHANNEL_MULTIPLE == 0) {
            continue;
        }
        let c = channels(start);
        let (mut members, mut writers, mut convs_reading) = (vec![start], Vec::new(), Vec::new());
        let mut ok = true;
        let mut i = 0;
        while ok && i < members.len() {
            let t = members[i];
            i += 1;
            seen.insert(t);
            let Some(&w) = producer.get(t) else { ok = false; break };
            let wn = &graph.node[w];
            ok = !outputs.contains(t) && channels(t) == c && wn.output.len() == 1;
            if plain_conv(wn) {
                writers.push(w);
            } else if wn.op_type == "Add" {
                for x in &wn.input {
                    if !members.contains(&x.as_str()) {
                        members.push(x.as_str());
                    }
                }
            } else {
                ok = false;
            }
            for &r in readers.get(t).map(Vec::as_slice).unwrap_or_default() {
                let rn = &graph.node[r];
                if plain_conv(rn) && rn.input[0] == t && !rn.input[1..].iter().any(|x| x == t) {
                    convs_reading.push(r);
                } else if rn.op_type == "Add" && rn.output.len() == 1 {
                    for x in rn.input.iter().chain(&rn.output) {
                        if !members.contains(&x.as_str()) {
                            members.push(x.as_str());
                        }
                    }
                } else {
                    ok = false;
                }
            }
        }
        let one_by_one = |k: &usize| attr_ints_or(&graph.node[*k], "kernel_shape", vec![]) == [1, 1];
        if ok && convs_reading.iter().any(one_by_one) {
            convs_reading.sort_unstable();
            convs_reading.dedup();
            writers.sort_unstable();
            writers.dedup();
            groups.push((members.iter().map(|m| m.to_string()).collect(), writers, convs_reading));
        }
    }
    for (members, writers, convs_reading) in groups {
        let Some(c) = members.first().and_then(|m| shapes.get(m)).map(|s| s[1]) else { continue };
        let padded = c.div_ceil(CHANNEL_MULTIPLE) * CHANNEL_MULTIPLE;
        for &k in &writers {
            pad_weight(graph, inits, k, 0, padded);
            pad_weight(graph, inits, k, 2, padded);
        }
        for &k in &convs_reading {
            pad_weight(graph, inits, k, 1, padded);
        }
        for m in &members {
            if let Some(s) = shapes.get_mut(m) {
                s[1] = padded;
            }
        }
    }
    let used: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let unused: Vec<String> = inits.keys().filter(|k| !used.contains(k.as_str())).cloned().collect();
    graph.initializer.retain(|t| used.contains(t.name.as_str()));
    for k in unused {
        inits.remove(&k);
    }
}

/// Gives node `k`'s constant weight (`which` 0: output channels, 1: input
/// channels of input 1; 2: the length of bias input 2) `to` entries on that
/// axis, the new ones zero, under a new name (the old may be shared).
fn pad_weight(graph: &mut pb::GraphProto, inits: &mut HashMap<String, TensorProto>, k: usize, which: usize, to: usize) {
    let (input, axis) = if which == 2 { (2, 0) } else { (1, which) };
    let Some(name) = graph.node[k].input.get(input).cloned() else { return };
    let Some(t) = inits.get(&name) else { return };
    let (Some(values), mut dims) = (values_f32(t), dims_usize(&t.dims)) else { return };
    let Some(&from) = dims.get(axis) else { return };
    if from >= to {
        return;
    }
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = vec![0f32; outer * to * inner];
    for o in 0..outer {
        let (src, dst) = (o * from * inner, o * to * inner);
        out[dst..dst + from * inner].copy_from_slice(&values[src..src + from * inner]);
    }
    dims[axis] = to;
    let new_name = format!("{}.padded{which}_{to}", graph.node[k].output[0]);
    let tensor = f32_tensor(&new_name, &dims, &out);
    inits.insert(new_name.clone(), tensor.clone());
    graph.initializer.push(tensor);
    graph.node[k].input[input] = new_name;
}

fn shape_of(shapes: &HashMap<String, Vec<usize>>, name: &str) -> Option<Vec<usize>> {
    shapes.get(name).cloned()
}

/// Shapes of every named value, from tract's type inference with the input
/// pinned to `input_shape`.
pub fn infer_shapes(model: &pb::ModelProto, input_shape: &[usize]) -> Result<HashMap<String, Vec<usize>>, NormaliseError> {
    Ok(infer_facts(model, input_shape)?.0)
}

/// Shapes of every named value, and the values tract's analysis knows as
/// constants (as initializers named after them, where their type is one an
/// initializer here can hold).
fn infer_facts(model: &pb::ModelProto, input_shape: &[usize]) -> Result<(HashMap<String, Vec<usize>>, HashMap<String, TensorProto>), NormaliseError> {
    let err = |e: TractError| NormaliseError::Shapes(format!("{e:#}"));
    let parsed = super::parser::onnx().parse(model, None).map_err(err)?;
    let mut m = parsed.model;
    m.set_input_fact(0, f32::fact(input_shape).into()).map_err(err)?;
    m.analyse(false).map_err(err)?;
    let mut shapes = HashMap::new();
    let mut constants = HashMap::new();
    for (name, outlet) in parsed.outlets_by_name {
        let Ok(fact) = m.outlet_fact(outlet) else { continue };
        if let Some(dims) = fact.shape.concretize() {
            let dims: Option<Vec<usize>> = dims.iter().map(|d| d.to_usize().ok()).collect();
            if let Some(dims) = dims {
                shapes.insert(name.clone(), dims);
            }
        }
        if let Some(t) = fact.value.concretize().and_then(|v| tensor_proto(&name, &v)) {
            constants.insert(name, t);
        }
    }
    Ok((shapes, constants))
}

/// A tract tensor as an initializer: float32, int64 (or concrete shape
/// dims) or int32, what shape arithmetic and weights use; None for other types.
fn tensor_proto(name: &str, t: &Tensor) -> Option<TensorProto> {
    let dims: Vec<usize> = t.shape().to_vec();
    let v = t.as_plain_ram()?;
    let (elem, raw): (DataType, Vec<u8>) = match t.datum_type() {
        DatumType::F32 => (DataType::Float, le_bytes(v.as_slice::<f32>().ok()?, f32::to_le_bytes)),
        DatumType::I64 => (DataType::Int64, le_bytes(v.as_slice::<i64>().ok()?, i64::to_le_bytes)),
        DatumType::I32 => (DataType::Int32, le_bytes(v.as_slice::<i32>().ok()?, i32::to_le_bytes)),
        // Shape arithmetic: tract keeps ONNX's int64 shapes as symbolic dims, concrete here.
        DatumType::TDim => {
            let dims: Option<Vec<i64>> = v.as_slice::<TDim>().ok()?.iter().map(|d| d.to_i64().ok()).collect();
            (DataType::Int64, le_bytes(&dims?, i64::to_le_bytes))
        }
        _ => return None,
    };
    Some(raw_tensor(name, elem, &dims, raw))
}

/// Replaces every node whose outputs are all known constants with
/// initializers for the outputs other nodes read (a graph output stays
/// computed). Nodes are in topological order, so a folded chain goes whole.
fn fold_constants(graph: &mut pb::GraphProto, inits: &mut HashMap<String, TensorProto>, constants: &HashMap<String, TensorProto>) {
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let foldable = |n: &NodeProto| {
        !n.output.is_empty() && n.output.iter().all(|o| !o.is_empty() && constants.contains_key(o) && !outputs.contains(o))
    };
    let (folded, kept): (Vec<NodeProto>, Vec<NodeProto>) = std::mem::take(&mut graph.node).into_iter().partition(|n| foldable(n));
    if folded.is_empty() {
        graph.node = kept;
        return;
    }
    let read: HashSet<&str> = kept.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    for name in folded.iter().flat_map(|n| n.output.iter()).filter(|o| read.contains(o.as_str())) {
        if let Some(t) = constants.get(name) {
            inits.insert(name.clone(), t.clone());
            graph.initializer.push(t.clone());
        }
    }
    // Initializers only the folded nodes read are gone with them.
    graph.initializer.retain(|t| read.contains(t.name.as_str()));
    inits.retain(|name, _| read.contains(name.as_str()));
    graph.node = kept;
}

fn dims_usize(dims: &[i64]) -> Vec<usize> {
    dims.iter().map(|&d| d.max(0) as usize).collect()
}

/// `auto_pad` → explicit symmetric-or-not `pads` from the inferred input shape.
fn explicit_pads(node: &mut NodeProto, shapes: &HashMap<String, Vec<usize>>, inits: &HashMap<String, TensorProto>) -> Result<(), NormaliseError> {
    let mode = attr(node, "auto_pad").map(|a| String::from_utf8_lossy(&a.s).to_string()).unwrap_or_default();
    if mode.is_empty() || mode == "NOTSET" {
        return Ok(());
    }
    let input = node.input.first().and_then(|x| shape_of(shapes, x)).ok_or_else(|| refuse(node, "input shape unknown"))?;
    let spatial = input.get(2..).ok_or_else(|| refuse(node, format!("input of shape {input:?} has no spatial dimensions")))?;
    let kernel = match attr(node, "kernel_shape") {
        Some(a) => a.ints.clone(),
        None => node.input.get(1).and_then(|w| inits.get(w)).and_then(|w| w.dims.get(2..)).map(<[i64]>::to_vec).ok_or_else(|| refuse(node, "kernel shape unknown"))?,
    };
    let n = spatial.len();
    let strides = attr_ints_or(node, "strides", vec![1; n]);
    let dilations = attr_ints_or(node, "dilations", vec![1; n]);
    if kernel.len() != n || strides.len() != n || dilations.len() != n || strides.iter().any(|&s| s < 1) {
        return Err(refuse(node, format!("kernel {kernel:?}, strides {strides:?} and dilations {dilations:?} do not fit {n} spatial dimensions")));
    }
    let mut pads = vec![0i64; 2 * n];
    if mode != "VALID" {
        for i in 0..n {
            let (inp, s) = (spatial[i] as i64, strides[i]);
            let out = (inp + s - 1) / s;
            let total = ((out - 1) * s + (kernel[i] - 1) * dilations[i] + 1 - inp).max(0);
            let small = total / 2;
            let (begin, end) = if mode == "SAME_LOWER" { (total - small, small) } else { (small, total - small) };
            pads[i] = begin;
            pads[n + i] = end;
        }
    }
    node.attribute.retain(|a| a.name != "auto_pad");
    set_attr(node, super::builder::attr_ints("pads", &pads));
    Ok(())
}

/// Gemm with transB=1: transpose the constant B into a new initializer.
fn gemm_trans_b(node: &mut NodeProto, inits: &mut HashMap<String, TensorProto>, out: &mut Vec<TensorProto>) -> Result<(), NormaliseError> {
    if attr(node, "transA").is_some_and(|a| a.i != 0) {
        return Err(refuse(node, "transA=1 is not supported"));
    }
    if !attr(node, "transB").is_some_and(|a| a.i != 0) {
        return Ok(());
    }
    let b = inits.get(&node.input[1]).ok_or_else(|| refuse(node, "transB=1 needs a constant B to transpose"))?;
    let v = values_f32(b).ok_or_else(|| refuse(node, "cannot read B"))?;
    let [rows, cols] = dims_usize(&b.dims)[..] else {
        return Err(refuse(node, "B is not a matrix"));
    };
    let t: Vec<f32> = (0..cols * rows).map(|i| v[(i % rows) * cols + i / rows]).collect();
    let name = format!("{}.transposed", node.input[1]);
    let tensor = f32_tensor(&name, &[cols, rows], &t);
    inits.insert(name.clone(), tensor.clone());
    out.push(tensor);
    node.input[1] = name;
    set_attr(node, super::builder::attr_int("transB", 0));
    Ok(())
}

/// Gemm whose inner dimension K is not a multiple of 4, which wonnx gets
/// wrong (measured: K = 6 and 10 off by 1e-2, K = 8 and 12 exact), becomes
/// Reshape → 1×1 Conv → Reshape, which wonnx computes right for any K.
/// Needs A of shape [1, K] and a constant B (already untransposed).
fn gemm_as_conv(
    node: &NodeProto,
    shapes: &HashMap<String, Vec<usize>>,
    inits: &mut HashMap<String, TensorProto>,
    out: &mut Vec<TensorProto>,
    extra: &mut Vec<(String, Vec<usize>)>,
) -> Result<Option<Vec<NodeProto>>, NormaliseError> {
    let a = shape_of(shapes, &node.input[0]).ok_or_else(|| refuse(node, "input shape unknown"))?;
    if a.last().is_none_or(|k| k % 4 == 0) {
        return Ok(None);
    }
    let [m, k] = a[..] else {
        return Err(refuse(node, format!("inner dimension of {a:?} is not a multiple of 4, which wonnx computes wrongly")));
    };
    let scale = |name: &str| attr(node, name).map_or(1.0, |a| a.f);
    if m != 1 || scale("alpha") != 1.0 || scale("beta") != 1.0 {
        return Err(refuse(node, format!("inner dimension {k} is not a multiple of 4 (wonnx computes it wrongly) and the Gemm is not a plain [1,K] layer")));
    }
    let b = inits.get(&node.input[1]).ok_or_else(|| refuse(node, "B must be a constant"))?;
    let bv = values_f32(b).ok_or_else(|| refuse(node, "cannot read B"))?;
    let n = bv.len() / k;
    // Conv weight [N, K, 1, 1] is Bᵀ.
    let w: Vec<f32> = (0..n * k).map(|i| bv[(i % k) * n + i / k]).collect();
    let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
        Some(c) => {
            let v = inits.get(c).and_then(values_f32).ok_or_else(|| refuse(node, "C must be a constant"))?;
            if v.len() == n { v } else if v.len() == 1 { vec![v[0]; n] } else { return Err(refuse(node, "C does not broadcast over [1,N]")) }
        }
        None => vec![0.0; n],
    };
    let y = &node.output[0];
    let names = [format!("{y}.as_conv.weight"), format!("{y}.as_conv.bias"), format!("{y}.as_conv.shape_in"), format!("{y}.as_conv.shape_out")];
    let tensors = [
        f32_tensor(&names[0], &[n, k, 1, 1], &w),
        f32_tensor(&names[1], &[n], &bias),
        super::builder::i64_tensor(&names[2], &[1, k as i64, 1, 1]),
        super::builder::i64_tensor(&names[3], &[1, n as i64]),
    ];
    for t in tensors {
        inits.insert(t.name.clone(), t.clone());
        out.push(t);
    }
    let (x4, y4) = (format!("{y}.as_conv.in"), format!("{y}.as_conv.out"));
    extra.push((x4.clone(), vec![1, k, 1, 1]));
    extra.push((y4.clone(), vec![1, n, 1, 1]));
    let make = |part: &str, op: &str, inputs: Vec<String>, output: String, attribute: Vec<AttributeProto>| NodeProto {
        name: format!("{}.{part}", node.name),
        op_type: op.into(),
        input: inputs,
        output: vec![output],
        attribute,
        ..Default::default()
    };
    use super::builder::attr_ints;
    Ok(Some(vec![
        make("reshape_in", "Reshape", vec![node.input[0].clone(), names[2].clone()], x4.clone(), vec![]),
        make("conv", "Conv", vec![x4, names[0].clone(), names[1].clone()], y4.clone(), vec![attr_ints("kernel_shape", &[1, 1]), attr_ints("pads", &[0, 0, 0, 0]), attr_ints("strides", &[1, 1])]),
        make("reshape_out", "Reshape", vec![y4, names[3].clone()], y.clone(), vec![]),
    ]))
}

/// Clip bounds as constant inputs (wonnx's optimizer turns them into
/// attributes, which it prints with one decimal): an absent bound becomes
/// ±3e38 (wonnx would print ±inf, which WGSL rejects), and a bound one decimal
/// cannot express is refused.
fn clip_bounds(node: &mut NodeProto, inits: &mut HashMap<String, TensorProto>, out: &mut Vec<TensorProto>) -> Result<(), NormaliseError> {
    for (i, default) in [(1, -3.0e38f32), (2, 3.0e38)] {
        let value = match node.input.get(i).filter(|s| !s.is_empty()) {
            None => attr(node, if i == 1 { "min" } else { "max" }).map_or(default, |a| a.f),
            Some(name) => {
                let t = inits.get(name).ok_or_else(|| refuse(node, "Clip bounds must be constants"))?;
                values_f32(t).and_then(|v| v.first().copied()).ok_or_else(|| refuse(node, "cannot read the Clip bound"))?
            }
        };
        let tenth = f64::from(value) * 10.0;
        if value.abs() < 1e30 && (tenth - tenth.round()).abs() > 1e-4 {
            return Err(refuse(node, format!("Clip bound {value} needs more than one decimal, which wonnx cannot express")));
        }
        let name = format!("{}.{}", node.output[0], if i == 1 { "min" } else { "max" });
        let t = f32_tensor(&name, &[], &[value]);
        inits.insert(name.clone(), t.clone());
        out.push(t);
        node.input.resize(3, String::new());
        node.input[i] = name;
    }
    node.attribute.retain(|a| a.name != "min" && a.name != "max");
    Ok(())
}

/// Keeps a Concat only where wonnx's flat concat is right, chaining long ones.
fn split_concat(
    node: NodeProto,
    shapes: &HashMap<String, Vec<usize>>,
    out: &mut Vec<NodeProto>,
    extra: &mut Vec<(String, Vec<usize>)>,
) -> Result<(), NormaliseError> {
    let shape = shape_of(shapes, &node.output[0]).ok_or_else(|| refuse(&node, "output shape unknown"))?;
    let rank = shape.len() as i64;
    let axis = attr(&node, "axis").map_or(0, |a| a.i);
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(refuse(&node, format!("axis {axis} is outside the output's {rank} dimensions")));
    }
    let axis = axis as usize;
    if shape[..axis.min(shape.len())].iter().product::<usize>() != 1 {
        return Err(refuse(&node, format!("concatenation along axis {axis} of {shape:?} is not contiguous, and wonnx concatenates flat")));
    }
    let mut inputs: Vec<String> = node.input.clone();
    let mut part = 0;
    while inputs.len() > MAX_CONCAT_INPUTS {
        let head: Vec<String> = inputs.drain(..MAX_CONCAT_INPUTS).collect();
        let width = |i: &String| {
            shape_of(shapes, i).or_else(|| extra.iter().find(|(n, _)| n == i).map(|(_, s)| s.clone())).and_then(|d| d.get(axis).copied())
        };
        let mut s = shape.clone();
        s[axis] = head.iter().map(width).sum::<Option<usize>>().ok_or_else(|| refuse(&node, "input shape unknown"))?;
        let name = format!("{}.part{part}", node.output[0]);
        let mut n = node.clone();
        n.name = format!("{}.part{part}", node.name);
        n.input = head;
        n.output = vec![name.clone()];
        out.push(n);
        extra.push((name.clone(), s));
        part += 1;
        // The running result is the first input of the next link.
        inputs.insert(0, name);
    }
    let mut n = node;
    n.input = inputs;
    out.push(n);
    Ok(())
}
