//! Backend choice: [`BackendChoice::Auto`] tries WebGPU first and falls back
//! to the CPU on any failure — no WebGPU, no adapter, an operator the
//! normaliser refuses, a shader or pipeline error, device loss, or a
//! load-time self-check (one fixed input through both backends) whose logits
//! disagree beyond [`SELF_CHECK_TOLERANCE`]. A GPU failure while running also
//! switches to the CPU for that and every later call. The status says which
//! backend runs and, after a fallback, why.

use super::{relative_max_diff, Backend, BackendKind, CpuBackend, GpuBackend, InferenceError, Outputs};
use crate::rng::Rng;
use crate::model::ModelPackage;
use serde::{Deserialize, Serialize};

/// Max |Δlogit| / max(1, max |logit|) the self-check accepts. Measured
/// differences on llvmpipe and SwiftShader are ~1e-6; a real GPU's different
/// summation order stays far below this, a wrong kernel far above.
pub const SELF_CHECK_TOLERANCE: f32 = 1e-3;

/// Accepts GPU logits that agree with the CPU's within
/// [`SELF_CHECK_TOLERANCE`]; returns the relative difference.
pub fn self_check(gpu: &[f32], cpu: &[f32]) -> Result<f32, InferenceError> {
    let diff = relative_max_diff(gpu, cpu);
    // NaN from a broken kernel must fail too, hence the negated comparison.
    if !(diff <= SELF_CHECK_TOLERANCE) {
        return Err(InferenceError::SelfCheck { max_diff: diff, tolerance: SELF_CHECK_TOLERANCE });
    }
    Ok(diff)
}

/// Which backend the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU if it loads and agrees with the CPU, else the CPU.
    #[default]
    Auto,
    /// WebGPU only; failures are errors.
    Gpu,
    /// The CPU only.
    Cpu,
}

/// Which backend runs, on what, and why there was a fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub kind: BackendKind,
    /// The GPU adapter, when WebGPU runs.
    pub adapter: Option<String>,
    /// Why WebGPU is not used, after a fallback.
    pub fallback_reason: Option<String>,
    /// The self-check's relative max |Δlogit|, when it ran.
    pub self_check: Option<f32>,
}

/// The chosen backend plus, in auto mode, the CPU to fall back to.
pub struct Engine {
    primary: Backend,
    fallback: Option<CpuBackend>,
    status: BackendStatus,
}

impl Engine {
    pub async fn load(package: &ModelPackage, choice: BackendChoice) -> Result<Self, InferenceError> {
        match choice {
            BackendChoice::Cpu => Self::cpu(package),
            BackendChoice::Gpu => {
                let gpu = GpuBackend::load(package).await?;
                let adapter = Some(gpu.adapter().to_string());
                Ok(Engine {
                    primary: Backend::Gpu(gpu),
                    fallback: None,
                    status: BackendStatus { kind: BackendKind::Gpu, adapter, fallback_reason: None, self_check: None },
                })
            }
            BackendChoice::Auto => {
                // The CPU backend is needed either way: for the self-check and as the fallback.
                let cpu = CpuBackend::load(package)?;
                match Self::checked_gpu(package, &cpu).await {
                    Ok((gpu, diff)) => {
                        let adapter = Some(gpu.adapter().to_string());
                        Ok(Engine {
                            primary: Backend::Gpu(gpu),
                            fallback: Some(cpu),
                            status: BackendStatus { kind: BackendKind::Gpu, adapter, fallback_reason: None, self_check: Some(diff) },
                        })
                    }
                    Err(e) => Ok(Engine {
                        primary: Backend::Cpu(cpu),
                        fallback: None,
                        status: BackendStatus { kind: BackendKind::Cpu, adapter: None, fallback_reason: Some(e.to_string()), self_check: None },
                    }),
                }
            }
        }
    }

    /// The CPU backend alone (synchronous).
    pub fn cpu(package: &ModelPackage) -> Result<Self, InferenceError> {
        Ok(Engine {
            primary: Backend::Cpu(CpuBackend::load(package)?),
            fallback: None,
            status: BackendStatus { kind: BackendKind::Cpu, adapter: None, fallback_reason: None, self_check: None },
        })
    }

    /// Loads the GPU backend and compares it with the CPU on a fixed input.
    async fn checked_gpu(package: &ModelPackage, cpu: &CpuBackend) -> Result<(GpuBackend, f32), InferenceError> {
        let gpu = GpuBackend::load(package).await?;
        let probe = Rng::new(0x5EED).vec(package.info.input.len(), -2.0, 2.0);
        let want = cpu.run(&probe)?;
        let got = gpu.run(&probe).await?;
        Ok((gpu, self_check(&got.logits, &want.logits)?))
    }

    pub fn status(&self) -> &BackendStatus {
        &self.status
    }

    /// Runs one input; in auto mode a GPU failure switches to the CPU for good.
    pub async fn run(&mut self, input: &[f32]) -> Result<(Outputs, BackendKind), InferenceError> {
        match self.primary.run(input).await {
            Ok(out) => Ok((out, self.primary.kind())),
            Err(e) => match self.fallback.take() {
                Some(cpu) => {
                    self.status = BackendStatus {
                        kind: BackendKind::Cpu,
                        adapter: None,
                        fallback_reason: Some(format!("WebGPU failed while running: {e}")),
                        self_check: None,
                    };
                    self.primary = Backend::Cpu(cpu);
                    Ok((self.primary.run(input).await?, BackendKind::Cpu))
                }
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_check_accepts_rounding_and_rejects_wrong_kernels() {
        assert!(self_check(&[1.0, -2.0], &[1.000_001, -2.0]).is_ok());
        let e = self_check(&[1.0, -2.0], &[1.1, -2.0]).unwrap_err();
        assert!(e.to_string().contains("self-check"), "{e}");
        assert!(self_check(&[f32::NAN, 0.0], &[0.0, 0.0]).is_err());
        assert!(self_check(&[1.0], &[1.0, 2.0]).is_err(), "a missing logit is a failure");
        // Small logits are compared against 1, not against themselves.
        assert!(self_check(&[1e-6], &[2e-6]).is_ok());
    }
}
