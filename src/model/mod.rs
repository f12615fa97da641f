//! The ONNX model package: read the bytes, check them, and describe the model.
//!
//! [`ModelPackage::read`] enforces the contract in docs/architecture.md ("The ONNX
//! contract"): a byte budget, an optional SHA-256 that must match, a
//! default-domain opset, exactly one float32 image input — NCHW `[N,3,H,W]` or
//! NHWC `[N,H,W,3]`, detected from the graph, with a symbolic batch pinned
//! to 1 — and a `[N,C]` output whose width equals the class count. The
//! `mriscreen.*` metadata becomes a [`ModelInfo`]; a plain third-party
//! classifier without it runs when the user supplies what it lacks through
//! [`Overrides`] (the CLI's `--classes`, `--mean`, `--std`, `--resize`,
//! `--intensity`, `--input-size`).

pub mod builder;
pub mod core_ops;
pub mod expand;
pub mod fold_bn;
mod info;
pub mod normalise;
pub mod parser;
pub mod quant;
pub mod random;
pub mod tensor_data;
pub mod validate;

pub use info::{keys, parse_classes, parse_size, parse_triple, Description, ModelInfo, Overrides, Precision};
pub use tract_onnx::pb;

use crate::preprocess::Layout;
use pb::tensor_shape_proto::dimension::Value as DimValue;
use prost::Message;
use crate::backend::timing::{Phase, Stopwatch};
use sha2::{Digest, Sha256};

/// How a model file is to be loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Lower-case hex SHA-256 the file must have (from a manifest); checked
    /// before anything else is read.
    pub expected_sha256: Option<String>,
    /// What the user supplies for a model that lacks `mriscreen.*` metadata.
    pub overrides: Overrides,
    /// Largest model file accepted, in bytes; 0 means [`DEFAULT_MAX_MODEL_BYTES`].
    pub max_bytes: usize,
    /// The SHA-256 of these very bytes, already computed by the caller (the
    /// page's worker hashes a download with the browser's native SubtleCrypto
    /// while the wasm compiles); used instead of hashing them again.
    pub computed_sha256: Option<String>,
}

/// 512 MiB: larger than any image classifier we would run on a tablet.
pub const DEFAULT_MAX_MODEL_BYTES: usize = 512 << 20;

/// Why a model cannot be used. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model file is empty (0 bytes); download or export it again")]
    Empty,
    #[error("the model file is {bytes} bytes, over the {limit}-byte limit for a model; use a smaller model (e.g. a quantized or narrower variant) or check that this is the model file and not an archive")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the expected SHA-256 {0:?} is not 64 hexadecimal digits; copy it again from the manifest")]
    BadExpectedHash(String),
    #[error("the SHA-256 computed for this file ({0:?}) is not 64 hexadecimal digits; pass none and the file is hashed here")]
    BadComputedHash(String),
    #[error("the model's SHA-256 is {actual} but {expected} was expected: the file is damaged or has been altered; download it again from a trusted source")]
    HashMismatch { expected: String, actual: String },
    #[error("not an ONNX model: the bytes do not parse as an ONNX ModelProto ({0}); export the model to .onnx (e.g. torch.onnx.export or tf2onnx)")]
    NotOnnx(String),
    #[error("the ONNX file has no graph; export the model again")]
    NoGraph,
    #[error("the model {0}; supported are default-domain opsets {min} to {max}; re-export with one of them (e.g. torch.onnx.export(..., opset_version=13))", min = MIN_OPSET, max = MAX_OPSET)]
    Opset(String),
    #[error("node `{node}` uses operator `{op}` from domain `{domain}`; only standard ONNX operators can run in the browser; re-export without custom or vendor operators")]
    CustomOp { node: String, op: String, domain: String },
    #[error("the model has {count} inputs ({names}); an image classifier must have exactly one image input")]
    Inputs { count: usize, names: String },
    #[error("input `{name}` is {elem}, but only float32 image inputs are supported; re-export with a float input")]
    InputType { name: String, elem: String },
    #[error("input `{name}` has shape {shape}; expected an image tensor [1,3,H,W] (NCHW) or [1,H,W,3] (NHWC); re-export the model with one 3-channel image input (e.g. torch.onnx.export with a dummy input of shape (1, 3, 224, 224))")]
    InputShape { name: String, shape: String },
    #[error("input `{name}` has a fixed batch of {batch}; mriscreen runs one image at a time; re-export with batch 1 or a dynamic batch")]
    Batch { name: String, batch: i64 },
    #[error("the model does not fix its input size ({name} is {shape}) and has no `mriscreen.input_size`; pass the size it was trained at, e.g. --input-size 224")]
    UnknownInputSize { name: String, shape: String },
    #[error("the input size {given} disagrees with the model's input `{name}`, which is fixed at {fixed}; drop the setting or use the model's size")]
    InputSizeConflict { name: String, given: String, fixed: String },
    #[error("the model has no outputs; export it again")]
    NoOutputs,
    #[error("output `{name}` has shape {shape}; expected class scores of shape [1,C]; re-export the classifier with its logits as the first output (not a detector or segmentation model)")]
    OutputShape { name: String, shape: String },
    #[error("the model has no class list (no `mriscreen.classes` metadata); pass the class names in output order, e.g. --classes glioma,meningioma,notumor,pituitary")]
    MissingClasses,
    #[error("output `{name}` gives {outputs} scores per image but {classes} classes were given ({list}); the class list must name every output, in order")]
    ClassCount { name: String, outputs: usize, classes: usize, list: String },
    #[error("metadata `{key}` = {value:?} is not valid: {expected}")]
    Metadata { key: String, value: String, expected: String },
    #[error("setting `{setting}` = {value:?} is not valid: {expected}")]
    Override { setting: &'static str, value: String, expected: String },
    #[error("the model file is malformed at {node}: {problem}; export it again")]
    Structure { node: String, problem: String },
    #[error(transparent)]
    Weights(#[from] expand::ExpandError),
}

pub const MIN_OPSET: i64 = 7;
pub const MAX_OPSET: i64 = 21;

/// A parsed and validated model.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    /// The graph with its weights expanded to float32 (`expand`); `info`
    /// describes the file as stored (its precision, SHA-256 and size).
    pub proto: pb::ModelProto,
    pub info: ModelInfo,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` (an ONNX model) with metadata entries set: existing keys get the
/// new value, new keys are appended; nothing else changes.
pub fn with_metadata(bytes: &[u8], entries: &[(&str, String)]) -> Result<Vec<u8>, ModelError> {
    let mut proto = pb::ModelProto::decode(bytes).map_err(|e| ModelError::NotOnnx(e.to_string()))?;
    for (key, value) in entries {
        match proto.metadata_props.iter_mut().find(|e| e.key == *key) {
            Some(e) => e.value.clone_from(value),
            None => proto.metadata_props.push(pb::StringStringEntryProto { key: key.to_string(), value: value.clone() }),
        }
    }
    Ok(proto.encode_to_vec())
}

impl ModelPackage {
    /// Reads and validates a model file (see the module docs).
    pub fn read(bytes: &[u8], opts: &LoadOptions) -> Result<Self, ModelError> {
        Self::read_timed(bytes, opts).map(|(package, _)| package)
    }

    /// [`read`](Self::read), with how long its parts took.
    pub fn read_timed(bytes: &[u8], opts: &LoadOptions) -> Result<(Self, Vec<Phase>), ModelError> {
        let mut watch = Stopwatch::start();
        let limit = if opts.max_bytes == 0 { DEFAULT_MAX_MODEL_BYTES } else { opts.max_bytes };
        if bytes.is_empty() {
            return Err(ModelError::Empty);
        }
        if bytes.len() > limit {
            return Err(ModelError::TooLarge { bytes: bytes.len(), limit });
        }
        let sha256 = match &opts.computed_sha256 {
            Some(h) => {
                let h = h.trim().to_ascii_lowercase();
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ModelError::BadComputedHash(h));
                }
                h
            }
            None => sha256_hex(bytes),
        };
        if let Some(expected) = &opts.expected_sha256 {
            let expected = expected.trim().to_ascii_lowercase();
            if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ModelError::BadExpectedHash(expected));
            }
            if expected != sha256 {
                return Err(ModelError::HashMismatch { expected, actual: sha256 });
            }
        }
        watch.lap(if opts.computed_sha256.is_some() { "SHA-256 (computed by the caller)" } else { "SHA-256" });
        let mut proto = pb::ModelProto::decode(bytes).map_err(|e| ModelError::NotOnnx(e.to_string()))?;
        let info = describe(&proto, opts, sha256, bytes.len())?;
        validate::graph(proto.graph.as_ref().ok_or(ModelError::NoGraph)?)?;
        watch.lap("ONNX parse and checks");
        // Both backends get float32 weights (see `expand`).
        expand::expand_weights(&mut proto)?;
        watch.lap("weights to float32");
        Ok((ModelPackage { proto, info }, watch.phases()))
    }
}

fn describe(proto: &pb::ModelProto, opts: &LoadOptions, sha256: String, bytes: usize) -> Result<ModelInfo, ModelError> {
    let graph = proto.graph.as_ref().ok_or(ModelError::NoGraph)?;
    if graph.node.is_empty() && graph.input.is_empty() {
        return Err(ModelError::NoGraph);
    }
    check_opset(proto)?;
    for node in &graph.node {
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(ModelError::CustomOp { node: node.name.clone(), op: node.op_type.clone(), domain: node.domain.clone() });
        }
    }
    let (input, layout, graph_size) = image_input(graph)?;
    let (logits, features) = outputs(graph)?;
    let metadata = proto.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    let mut info = ModelInfo::from_metadata(metadata, &opts.overrides)?;
    info.input_name = input.name.clone();
    info.logits_name = logits.name.clone();
    info.features_name = features.map(|f| f.name.clone());
    info.sha256 = sha256;
    info.bytes = bytes;
    info.input.layout = layout;
    let shape = shape_string(&input);
    info.input = resolve_size(info.input.clone(), &info.declared_size, graph_size, &input.name, &shape)?;
    if let Some(width) = declared_width(logits) {
        info.check_output_width(&logits.name, width)?;
    }
    Ok(info)
}

fn check_opset(proto: &pb::ModelProto) -> Result<(), ModelError> {
    let default = proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx");
    match default {
        None => Err(ModelError::Opset("imports no default-domain (ai.onnx) opset".into())),
        Some(o) if !(MIN_OPSET..=MAX_OPSET).contains(&o.version) => {
            Err(ModelError::Opset(format!("imports default-domain opset {}", o.version)))
        }
        Some(_) => Ok(()),
    }
}

fn dims(v: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(DimValue::DimValue(v)) if v > 0 => Some(v),
                _ => None,
            })
            .collect(),
    )
}

fn elem_type(v: &pb::ValueInfoProto) -> Option<i32> {
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    Some(t.elem_type)
}

fn shape_string(v: &pb::ValueInfoProto) -> String {
    match dims(v) {
        None => "unknown".into(),
        Some(d) => {
            let parts: Vec<String> = d.iter().map(|x| x.map_or("?".into(), |v| v.to_string())).collect();
            format!("[{}]", parts.join(","))
        }
    }
}

/// The one image input, its layout, and its (width, height) when fixed.
fn image_input(graph: &pb::GraphProto) -> Result<(&pb::ValueInfoProto, Layout, Option<(usize, usize)>), ModelError> {
    let inits: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !inits.contains(i.name.as_str())).collect();
    if inputs.len() != 1 {
        let names = inputs.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ");
        return Err(ModelError::Inputs { count: inputs.len(), names });
    }
    let input = inputs[0];
    let elem = elem_type(input).unwrap_or(0);
    if elem != pb::tensor_proto::DataType::Float as i32 {
        let elem = pb::tensor_proto::DataType::try_from(elem).map_or("an unknown type".into(), |t| t.as_str_name().to_string());
        return Err(ModelError::InputType { name: input.name.clone(), elem });
    }
    let bad_shape = || ModelError::InputShape { name: input.name.clone(), shape: shape_string(input) };
    let d = dims(input).ok_or_else(bad_shape)?;
    if d.len() != 4 {
        return Err(bad_shape());
    }
    if let Some(batch) = d[0].filter(|&b| b != 1) {
        return Err(ModelError::Batch { name: input.name.clone(), batch });
    }
    let (layout, h, w) = match (d[1], d[3]) {
        (Some(3), _) => (Layout::Nchw, d[2], d[3]),
        (_, Some(3)) => (Layout::Nhwc, d[1], d[2]),
        _ => return Err(bad_shape()),
    };
    let size = w.zip(h).map(|(w, h)| (w as usize, h as usize));
    Ok((input, layout, size))
}

/// The logits output (named `logits`, else the first) and the optional
/// `features` output.
fn outputs(graph: &pb::GraphProto) -> Result<(&pb::ValueInfoProto, Option<&pb::ValueInfoProto>), ModelError> {
    let first = graph.output.first().ok_or(ModelError::NoOutputs)?;
    let logits = graph.output.iter().find(|o| o.name == "logits").unwrap_or(first);
    let features = graph.output.iter().find(|o| o.name == "features" && o.name != logits.name);
    if let Some(d) = dims(logits) {
        let ok = match d.as_slice() {
            [b, _] => b.is_none_or(|b| b == 1),
            _ => false,
        };
        if !ok {
            return Err(ModelError::OutputShape { name: logits.name.clone(), shape: shape_string(logits) });
        }
    }
    Ok((logits, features))
}

fn declared_width(v: &pb::ValueInfoProto) -> Option<usize> {
    dims(v)?.get(1).copied().flatten().map(|w| w as usize)
}

/// Chooses the input (width, height): the user's setting, else the metadata,
/// else the graph; either must agree with a size the graph fixes.
fn resolve_size(
    mut spec: crate::preprocess::InputSpec,
    declared: &Option<(usize, usize)>,
    graph: Option<(usize, usize)>,
    name: &str,
    shape: &str,
) -> Result<crate::preprocess::InputSpec, ModelError> {
    let size = match (declared, graph) {
        (Some(d), Some(g)) if *d != g => {
            return Err(ModelError::InputSizeConflict {
                name: name.into(),
                given: format!("{}x{}", d.0, d.1),
                fixed: format!("{}x{}", g.0, g.1),
            })
        }
        (Some(d), _) => *d,
        (None, Some(g)) => g,
        (None, None) => return Err(ModelError::UnknownInputSize { name: name.into(), shape: shape.into() }),
    };
    (spec.width, spec.height) = size;
    Ok(spec)
}
