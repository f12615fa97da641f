//! The WebGPU backend of a build without the `gpu` feature: the page's
//! CPU-only wasm module, which devices without a hardware WebGPU adapter
//! download instead of the one carrying wonnx (docs/architecture.md, "Two
//! wasm modules"). [`GpuBackend`] has no values, so every path that would
//! run it ends at [`GpuBackend::load`]'s error.

use super::timing::Profile;
use super::{InferenceError, Outputs};
use crate::model::ModelPackage;

const NOT_BUILT: &str = "this build has no WebGPU backend (built without the `gpu` feature)";

/// What the `gpu` build's probe reports about an adapter.
pub struct Adapter {
    pub description: String,
    pub software: bool,
}

/// Always an error: there is no adapter to look for.
pub async fn probe() -> Result<Adapter, InferenceError> {
    Err(InferenceError::GpuUnavailable(NOT_BUILT.into()))
}

pub enum GpuBackend {}

impl GpuBackend {
    pub async fn load(_package: &ModelPackage) -> Result<Self, InferenceError> {
        Err(InferenceError::GpuUnavailable(NOT_BUILT.into()))
    }

    pub fn adapter(&self) -> &str {
        match *self {}
    }

    pub async fn run(&self, _input: &[f32]) -> Result<Outputs, InferenceError> {
        match *self {}
    }

    pub async fn profile(&self, _input: &[f32], _runs: usize) -> Result<Profile, InferenceError> {
        match *self {}
    }
}
