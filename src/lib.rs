//! mriscreen: the one library shared by the browser (wasm) and the native
//! trainer and CLI — image and DICOM decoding, preprocessing, the ONNX model
//! package, inference backends, and (wasm32 only) the JavaScript API in
//! `web.rs`.
//!
//! Research software, not a diagnostic device.

pub mod arch;
pub mod backend;
pub mod classify;
pub mod decode;
pub mod familiar;
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod heatmap;
pub mod input_check;
pub mod model;
pub mod preprocess;
pub mod referral;
pub mod rng;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use backend::{BackendChoice, BackendKind, BackendStatus, InferenceError};
pub use classify::{softmax, ClassProbability, Classifier, Prediction, Timings};
pub use decode::{DecodeError, Limits};
pub use model::{LoadOptions, ModelError, ModelInfo, ModelPackage, Overrides};
pub use referral::ReferReason;

/// Everything that can go wrong between bytes in and a prediction out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

impl Error {
    /// What kind of failure this is, for a caller that reacts to it (the page
    /// evicts a cached model file on `hash`): `decode` (the image),
    /// `hash` (the model file does not match its expected SHA-256), `model`
    /// (any other problem with the model file) or `inference`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Decode(DecodeError::OtherEngine { .. }) => "format-elsewhere",
            Error::Decode(_) => "decode",
            Error::Model(ModelError::HashMismatch { .. }) => "hash",
            Error::Model(_) => "model",
            Error::Inference(InferenceError::OutsideCore(_)) => "outside-core",
            Error::Inference(_) => "inference",
        }
    }
}

/// Runs a future to completion on the current thread (native only): the
/// CLI's and the tests' way into the async API.
#[cfg(not(target_arch = "wasm32"))]
pub use pollster::block_on;

/// The product's four classes, in the output order of every model we train.
pub const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

/// Shown wherever results are: the page, the CLI, every report.
pub const DISCLAIMER: &str = "Research software, not a diagnostic device. Results must not be used for clinical decisions.";
