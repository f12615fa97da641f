//! Inference backends behind one enum (no trait objects): [`Backend::Cpu`]
//! runs tract-onnx, natively and in wasm. The WebGPU backend (wonnx) joins as
//! a second variant; the caller never needs to know which one ran beyond the
//! [`BackendKind`] reported with every result.

mod cpu;

pub use cpu::CpuBackend;

use crate::model::ModelPackage;
use serde::{Deserialize, Serialize};

/// Which backend produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "CPU",
        })
    }
}

/// Why inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the CPU backend cannot load this model: {0}; the graph may use an operator or shape tract does not support — check it with an ONNX checker (e.g. onnx.checker) and re-export")]
    Load(String),
    #[error("inference failed on the {backend}: {message}")]
    Run { backend: BackendKind, message: String },
    #[error("{0}")]
    Model(#[from] crate::model::ModelError),
}

/// The last feature map before global pooling, `[K, h, w]` for batch 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMap {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// What one forward pass returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub logits: Vec<f32>,
    pub features: Option<FeatureMap>,
}

/// A loaded model ready to run.
pub enum Backend {
    Cpu(CpuBackend),
}

impl Backend {
    /// Loads `package` on the CPU backend.
    pub fn cpu(package: &ModelPackage) -> Result<Self, InferenceError> {
        Ok(Backend::Cpu(CpuBackend::load(package)?))
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Cpu(_) => BackendKind::Cpu,
        }
    }

    /// Runs one preprocessed input tensor.
    pub fn run(&self, input: &[f32]) -> Result<Outputs, InferenceError> {
        match self {
            Backend::Cpu(b) => b.run(input),
        }
    }
}
