//! CPU inference with tract-onnx: parse once, pin the input to batch 1,
//! optimise once, then run many times. The native reference backend, and the
//! browser's fallback when WebGPU is missing or wrong.

use super::{BackendKind, FeatureMap, InferenceError, Outputs};
use crate::model::ModelPackage;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

pub struct CpuBackend {
    plan: Arc<TypedRunnableModel>,
    shape: [usize; 4],
    has_features: bool,
}

fn load_error(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Load(e.to_string())
}

impl CpuBackend {
    pub fn load(package: &ModelPackage) -> Result<Self, InferenceError> {
        let info = &package.info;
        let shape = info.input.shape();
        let mut outputs = vec![info.logits_name.as_str()];
        outputs.extend(info.features_name.as_deref());
        let model = crate::model::parser::onnx()
            .model_for_proto_model(&package.proto)
            .map_err(|e| load_error(format!("{e:#}")))?
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.with_outputs_by_name(&outputs))
            .and_then(|m| m.into_typed())
            .map_err(|e| load_error(format!("{e:#}")))?;
        // The logits width is known only after type inference for files that
        // do not declare their output shapes.
        let logits = model.output_fact(0).map_err(load_error)?;
        let dims: Vec<Option<usize>> = logits.shape.iter().map(|d| d.to_usize().ok()).collect();
        match dims.as_slice() {
            [Some(1), Some(width)] => info.check_output_width(&info.logits_name, *width)?,
            _ => {
                return Err(crate::model::ModelError::OutputShape {
                    name: info.logits_name.clone(),
                    shape: format!("{:?}", logits.shape),
                }
                .into())
            }
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_error(format!("{e:#}")))?;
        Ok(CpuBackend { plan, shape, has_features: info.features_name.is_some() })
    }

    pub fn run(&self, input: &[f32]) -> Result<Outputs, InferenceError> {
        let fail = |e: TractError| InferenceError::Run { backend: BackendKind::Cpu, message: format!("{e:#}") };
        let tensor = Tensor::from_shape(&self.shape, input).map_err(fail)?;
        let out = self.plan.run(tvec!(tensor.into_tvalue())).map_err(fail)?;
        let logits = out[0].to_plain_array_view::<f32>().map_err(fail)?.iter().copied().collect();
        let features = match (self.has_features, out.get(1)) {
            (true, Some(f)) => {
                let view = f.to_plain_array_view::<f32>().map_err(fail)?;
                let s = view.shape();
                if s.len() != 4 || s[0] != 1 {
                    return Err(InferenceError::Run {
                        backend: BackendKind::Cpu,
                        message: format!("output `features` has shape {s:?}; expected [1,K,h,w]"),
                    });
                }
                Some(FeatureMap { channels: s[1], height: s[2], width: s[3], data: view.iter().copied().collect() })
            }
            _ => None,
        };
        Ok(Outputs { logits, features })
    }
}
