//! WebGPU inference with wonnx 0.5.1 (through `wgpu-bridge`): the browser's
//! WebGPU in wasm, Vulkan natively. The model is first rewritten by
//! [`normalise::for_wonnx`] into the form wonnx computes correctly. Device
//! errors and device loss, which wgpu would otherwise turn into panics, are
//! collected by the bridge and surface here as errors.

use super::{BackendKind, FeatureMap, InferenceError, Outputs};
use crate::model::{normalise, ModelPackage};
use prost::Message;
use std::collections::HashMap;
use wonnx::utils::{InputTensor, OutputTensor};

pub struct GpuBackend {
    session: wonnx::Session,
    input: String,
    logits: String,
    features: Option<(String, [usize; 3])>,
    adapter: String,
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
        Ok(GpuBackend { session, input: info.input_name.clone(), logits: info.logits_name.clone(), features, adapter })
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

fn output_dims(model: &crate::model::pb::ModelProto, name: &str) -> Option<Vec<usize>> {
    use crate::model::pb::{tensor_shape_proto::dimension::Value, type_proto};
    let out = model.graph.as_ref()?.output.iter().find(|o| o.name == name)?;
    let type_proto::Value::TensorType(t) = out.r#type.as_ref()?.value.as_ref()?;
    t.shape.as_ref()?.dim.iter().map(|d| match d.value {
        Some(Value::DimValue(v)) if v > 0 => Some(v as usize),
        _ => None,
    }).collect()
}
