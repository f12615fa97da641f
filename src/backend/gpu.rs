//! WebGPU inference with wonnx 0.5.1 (through `wgpu-bridge`): the browser's
//! WebGPU in wasm, Vulkan natively. The model is first rewritten by
//! [`normalise::for_wonnx`] into the form wonnx computes correctly. Device
//! errors and device loss, which wgpu would otherwise turn into panics, are
//! collected by the bridge and surface here as errors.

use super::timing::Profile;
use super::{BackendKind, FeatureMap, InferenceError, Outputs};
use crate::model::{normalise, pb, ModelPackage};
use prost::Message;
use std::collections::HashMap;
use wonnx::utils::{InputTensor, OutputTensor};

pub struct GpuBackend {
    session: wonnx::Session,
    input: String,
    logits: String,
    features: Option<(String, [usize; 3])>,
    adapter: String,
    /// Each node of the model wonnx compiled: its name, kind and output
    /// shape, which a profile reports (wonnx labels a pass with its node's name).
    nodes: HashMap<String, (String, String)>,
}

fn failed(message: impl Into<String>) -> InferenceError {
    InferenceError::Gpu(message.into())
}

/// Errors the device reported since the last look, as one error.
fn device_errors() -> Result<(), InferenceError> {
    let errors = wgpu::bridge::take_errors();
    if errors.is_empty() { Ok(()) } else { Err(failed(errors.join("; "))) }
}

/// The adapter a [`GpuBackend`] would run on, or why there is none.
pub async fn probe() -> Result<wgpu::bridge::Adapter, InferenceError> {
    wgpu::bridge::probe().await.map_err(InferenceError::GpuUnavailable)
}

impl GpuBackend {
    pub async fn load(package: &ModelPackage) -> Result<Self, InferenceError> {
        let probed = probe().await?;
        let adapter = probed.description;
        let _ = wgpu::bridge::take_errors();
        let model = normalise::for_wonnx(package).map_err(|e| InferenceError::GpuUnsupported(e.to_string()))?;
        let info = &package.info;
        let features = match &info.features_name {
            Some(name) => {
                let dims = output_dims(&model, name).ok_or_else(|| failed(format!("output `{name}` has no shape")))?;
                match dims[..] {
                    [1, k, h, w] => Some((name.clone(), [k, h, w])),
                    _ => return Err(failed(format!("output `{name}` has shape {dims:?}; expected [1,K,h,w]"))),
                }
            }
            None => None,
        };
        let mut outputs = vec![info.logits_name.clone()];
        outputs.extend(features.iter().map(|(n, _)| n.clone()));
        let config = wonnx::SessionConfig::new().with_outputs(Some(outputs));
        let session = wonnx::Session::from_bytes_with_config(&model.encode_to_vec(), &config)
            .await
            .map_err(|e| failed(format!("wonnx could not compile the model: {e}")))?;
        device_errors()?;
        let nodes = node_kinds(&model);
        Ok(GpuBackend { session, input: info.input_name.clone(), logits: info.logits_name.clone(), features, adapter, nodes })
    }

    /// The adapter in use, e.g. "SwiftShader Device (Vulkan)".
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    pub async fn run(&self, input: &[f32]) -> Result<Outputs, InferenceError> {
        let mut inputs: HashMap<String, InputTensor> = HashMap::new();
        inputs.insert(self.input.clone(), input.into());
        let mut out = self.session.run(&inputs).await.map_err(|e| InferenceError::Run { backend: BackendKind::Gpu, message: e.to_string() })?;
        device_errors()?;
        let mut take = |name: &str| match out.remove(name) {
            Some(OutputTensor::F32(v)) => Ok(v),
            _ => Err(failed(format!("output `{name}` is missing or not float32"))),
        };
        let logits = take(&self.logits)?;
        let features = match &self.features {
            Some((name, [k, h, w])) => {
                let data = take(name)?;
                if data.len() != k * h * w {
                    return Err(failed(format!("output `{name}` has {} values, expected {}", data.len(), k * h * w)));
                }
                Some(FeatureMap { channels: *k, height: *h, width: *w, data })
            }
            None => None,
        };
        Ok(Outputs { logits, features })
    }
}

impl GpuBackend {
    /// Runs `input` `runs` times with every compute pass timed by the
    /// device's own clock (a timestamp at each pass's start and end; wonnx
    /// runs one pass per operation, or per fused Conv+Relu or Conv+Clip). `total_ms`
    /// is the wall time of one inference, submission and read-back
    /// included; `in_ops_ms` the passes' device time.
    pub async fn profile(&self, input: &[f32], runs: usize) -> Result<Profile, InferenceError> {
        let runs = runs.max(1);
        wgpu::bridge::time_passes(true);
        let timed = self.timed_runs(input, runs).await;
        wgpu::bridge::time_passes(false);
        let (passes, total_ms) = timed?;
        if passes.is_empty() {
            return Err(failed("this WebGPU device cannot time its passes (it has no timestamp queries), so there is no profile"));
        }
        let mut by_label: Vec<(String, String, String, f64)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for pass in passes {
            let i = *index.entry(pass.label.clone()).or_insert_with(|| {
                let (kind, output) = pass_kind(&self.nodes, &pass.label);
                by_label.push((pass.label.clone(), kind, output, 0.0));
                by_label.len() - 1
            });
            by_label[i].3 += pass.ms;
        }
        Ok(Profile::from_nodes(by_label, runs, total_ms))
    }

    /// The timed passes of `runs` inferences and the mean wall time of one.
    async fn timed_runs(&self, input: &[f32], runs: usize) -> Result<(Vec<wgpu::bridge::PassTime>, f64), InferenceError> {
        let mut passes = Vec::new();
        let mut wall_ms = 0.0;
        for _ in 0..runs {
            let t = web_time::Instant::now();
            self.run(input).await?;
            wall_ms += t.elapsed().as_secs_f64() * 1e3;
            passes.extend(wgpu::bridge::take_pass_times().await.map_err(failed)?);
        }
        Ok((passes, wall_ms / runs as f64))
    }
}

/// What a pass labelled `label` computes and the shape it writes: wonnx
/// labels a pass with its node's name, and two it fuses `a+b` (each node's
/// first output).
fn pass_kind(nodes: &HashMap<String, (String, String)>, label: &str) -> (String, String) {
    let parts: Vec<&(String, String)> = label.split('+').filter_map(|part| nodes.get(part)).collect();
    match parts.last() {
        Some((_, output)) => (parts.iter().map(|(kind, _)| kind.as_str()).collect::<Vec<_>>().join("+"), output.clone()),
        None => ("(unknown node)".to_string(), String::new()),
    }
}

/// Each node's kind (its operator; a convolution also by its kernel, and
/// whether it is depthwise) and output shape, by its name and by its first
/// output's name.
fn node_kinds(model: &pb::ModelProto) -> HashMap<String, (String, String)> {
    let Some(graph) = &model.graph else { return HashMap::new() };
    // Looked up once per value, not searched for per node: this runs at every load.
    let shapes: HashMap<&str, &pb::ValueInfoProto> = graph.output.iter().chain(&graph.value_info).map(|v| (v.name.as_str(), v)).collect();
    let dims = |name: &str| shapes.get(name).and_then(|v| fixed_dims(v)).map(|d| format!("{d:?}")).unwrap_or_default();
    let weights: HashMap<&str, &[i64]> = graph.initializer.iter().map(|t| (t.name.as_str(), t.dims.as_slice())).collect();
    graph
        .node
        .iter()
        .flat_map(|node| {
            let kind = match node.op_type.as_str() {
                "Conv" => conv_kind(node, node.input.get(1).and_then(|w| weights.get(w.as_str())).copied()),
                op => op.to_string(),
            };
            let output = node.output.first().map(|o| dims(o)).unwrap_or_default();
            let names = [Some(&node.name), node.output.first()];
            names.into_iter().flatten().map(move |name| (name.clone(), (kind.clone(), output.clone()))).collect::<Vec<_>>()
        })
        .collect()
}

/// "Conv 1x1", "Conv 3x3", or "Conv depthwise 3x3" (one input channel per group).
fn conv_kind(node: &pb::NodeProto, weight: Option<&[i64]>) -> String {
    let group = node.attribute.iter().find(|a| a.name == "group").map_or(1, |a| a.i);
    match weight {
        Some([out, 1, h, w]) if group > 1 && group == *out => format!("Conv depthwise {h}x{w}"),
        Some([_, _, h, w]) => format!("Conv {h}x{w}"),
        _ => "Conv".to_string(),
    }
}

/// The fixed shape of graph output `name`.
fn output_dims(model: &pb::ModelProto, name: &str) -> Option<Vec<usize>> {
    fixed_dims(model.graph.as_ref()?.output.iter().find(|o| o.name == name)?)
}

/// A value's shape, if every dimension is a fixed positive number.
fn fixed_dims(value: &pb::ValueInfoProto) -> Option<Vec<usize>> {
    use pb::{tensor_shape_proto::dimension::Value, type_proto};
    let type_proto::Value::TensorType(t) = value.r#type.as_ref()?.value.as_ref()?;
    t.shape.as_ref()?.dim.iter().map(|d| match d.value {
        Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
        _ => None,
    }).collect()
}
