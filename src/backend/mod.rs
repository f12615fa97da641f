//! Inference backends behind one enum (no trait objects): [`Backend::Gpu`]
//! runs wonnx on WebGPU (the browser's, or Vulkan natively) and
//! [`Backend::Cpu`] runs tract-onnx. [`Engine`] chooses between them: try the
//! GPU, check it against the CPU on a fixed input, and fall back to the CPU on
//! any failure, recording why.

mod cpu;
mod engine;
// Without the `gpu` feature (the page's CPU-only module) the WebGPU backend is
// a type with no values whose loading says that this build has none.
#[cfg_attr(not(feature = "gpu"), path = "gpu_absent.rs")]
mod gpu;
pub mod timing;

pub use cpu::CpuBackend;
pub use engine::{self_check, BackendChoice, BackendStatus, Engine, SELF_CHECK_TOLERANCE};
pub use gpu::{probe as probe_gpu, GpuBackend};

use serde::{Deserialize, Serialize};

/// Which backend produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Gpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "CPU",
            BackendKind::Gpu => "WebGPU",
        })
    }
}

/// Why inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the CPU backend cannot load this model: {0}; the graph may use an operator or shape tract does not support — check it with an ONNX checker (e.g. onnx.checker) and re-export")]
    Load(String),
    #[error("inference failed on the {backend} backend: {message}; {}", run_hint(*.backend))]
    Run { backend: BackendKind, message: String },
    #[error("WebGPU is not available: {0}; {USE_CPU}")]
    GpuUnavailable(String),
    #[error("the WebGPU backend cannot run this model: {0}; {USE_CPU}")]
    GpuUnsupported(String),
    #[error("the WebGPU backend failed: {0}; {USE_CPU}")]
    Gpu(String),
    #[error("WebGPU results disagree with the CPU on the load-time self-check: max |Δlogit| {max_diff:.3e} > tolerance {tolerance:.3e}; this GPU or its driver computes the model wrongly, so {USE_CPU}")]
    SelfCheck { max_diff: f32, tolerance: f32 },
    #[error("{0}")]
    Model(#[from] crate::model::ModelError),
    /// This build parses the core operator set only (the page's CPU-only
    /// engine); the page then loads the model with its full engine.
    #[error("the model uses operators outside the core set this engine has ({}); the page loads its full engine for it", .0.join(", "))]
    OutsideCore(Vec<String>),
}

/// What to do when WebGPU fails: the CPU runs every model the loader accepts.
const USE_CPU: &str = "run on the CPU instead (--backend cpu, or ?backend=cpu in the page's address)";

fn run_hint(backend: BackendKind) -> &'static str {
    match backend {
        BackendKind::Gpu => USE_CPU,
        BackendKind::Cpu => "the model loaded but cannot run on this input; check it runs in onnxruntime on a 1-image batch and re-export it",
    }
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
    Gpu(GpuBackend),
}

impl Backend {
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Cpu(_) => BackendKind::Cpu,
            Backend::Gpu(_) => BackendKind::Gpu,
        }
    }

    /// Runs one preprocessed input tensor.
    pub async fn run(&self, input: &[f32]) -> Result<Outputs, InferenceError> {
        match self {
            Backend::Cpu(b) => b.run(input),
            Backend::Gpu(b) => b.run(input).await,
        }
    }
}

/// Largest |a − b| over two logit vectors, relative to the larger logit
/// magnitude (at least 1).
pub fn relative_max_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    let scale = a.iter().chain(b).fold(1f32, |m, v| m.max(v.abs()));
    // NaN propagates (f32::max would drop it): a NaN logit is a failure.
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, |m, d| if d.is_nan() || m.is_nan() { f32::NAN } else { m.max(d) }) / scale
}
