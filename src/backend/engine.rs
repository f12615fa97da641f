//! Backend choice: [`BackendChoice::Auto`] runs whichever backend is faster
//! on this device. A software adapter (llvmpipe, SwiftShader: a CPU
//! pretending to be a GPU, ~100× slower than tract here) is passed over for
//! the CPU unless asked for (`--backend gpu`, `?backend=gpu`, or natively
//! [`ALLOW_SOFTWARE_ENV`]). On another adapter WebGPU is loaded and
//! self-checked (one fixed input through both backends; logits within
//! [`SELF_CHECK_TOLERANCE`]), then both backends are timed on a few runs and
//! the faster one is kept. Any failure on the way — no WebGPU, no adapter, an
//! operator the normaliser refuses, a shader or pipeline error, device loss,
//! a failed self-check — leaves the CPU. A GPU failure while running also
//! switches to the CPU for that and every later call. The status says which
//! backend runs and why.

use super::timing::{Phase, Profile};
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

/// Natively, set to 1 to let auto mode consider a software adapter (it still
/// has to pass the self-check and win the timing); for tests of the GPU path
/// on machines without a GPU.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub const ALLOW_SOFTWARE_ENV: &str = "MRISCREEN_ALLOW_SOFTWARE_GPU";

/// Timed runs per backend when auto mode compares them (after the self-check's warm-up run).
pub const SPEED_RUNS: usize = 3;

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
    /// Auto mode's timing of both backends, when it ran: "WebGPU 4.1 ms vs CPU 26.0 ms per scan".
    #[serde(default)]
    pub speed: Option<String>,
}

impl BackendStatus {
    fn cpu(fallback_reason: Option<String>) -> Self {
        BackendStatus { kind: BackendKind::Cpu, adapter: None, fallback_reason, self_check: None, speed: None }
    }
}

/// Median milliseconds of [`SPEED_RUNS`] runs.
async fn time_runs<F, Fut>(mut run: F) -> Result<f64, InferenceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Outputs, InferenceError>>,
{
    let mut ms = Vec::with_capacity(SPEED_RUNS);
    for _ in 0..SPEED_RUNS {
        let t = web_time::Instant::now();
        run().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

fn allow_software() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    return std::env::var(ALLOW_SOFTWARE_ENV).is_ok_and(|v| v == "1");
    #[cfg(target_arch = "wasm32")]
    false
}

/// The chosen backend plus, in auto mode, the CPU to fall back to.
pub struct Engine {
    primary: Backend,
    fallback: Option<CpuBackend>,
    status: BackendStatus,
    load_phases: Vec<Phase>,
}

impl Engine {
    pub async fn load(package: &ModelPackage, choice: BackendChoice) -> Result<Self, InferenceError> {
        let t = web_time::Instant::now();
        let mut engine = Self::choose(package, choice).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let cpu = match (&engine.primary, &engine.fallback) {
            (Backend::Cpu(c), _) | (_, Some(c)) => c.load_phases().to_vec(),
            _ => Vec::new(),
        };
        let rest = ms - cpu.iter().map(|p| p.ms).sum::<f64>();
        engine.load_phases = cpu;
        match choice {
            BackendChoice::Cpu => {}
            BackendChoice::Gpu => engine.load_phases.push(Phase { name: "WebGPU: load", ms: rest }),
            BackendChoice::Auto => engine.load_phases.push(Phase { name: "auto mode: WebGPU probe (and on a hardware adapter its load, self-check and timing)", ms: rest }),
        }
        Ok(engine)
    }

    async fn choose(package: &ModelPackage, choice: BackendChoice) -> Result<Self, InferenceError> {
        match choice {
            BackendChoice::Cpu => Self::cpu(package),
            BackendChoice::Gpu => {
                let gpu = GpuBackend::load(package).await?;
                let adapter = Some(gpu.adapter().to_string());
                Ok(Engine {
                    primary: Backend::Gpu(gpu),
                    fallback: None,
                    status: BackendStatus { kind: BackendKind::Gpu, adapter, fallback_reason: None, self_check: None, speed: None },
                    load_phases: Vec::new(),
                })
            }
            BackendChoice::Auto => {
                // The CPU backend is needed either way: for the self-check, the timing and as the fallback.
                let cpu = CpuBackend::load(package)?;
                match super::probe_gpu().await {
                    Err(e) => return Ok(Self::on_cpu(cpu, e.to_string())),
                    Ok(a) if a.software && !allow_software() => {
                        return Ok(Self::on_cpu(cpu, format!(
                            "the only WebGPU adapter is a software rasteriser ({}), slower than the CPU; --backend gpu (?backend=gpu in the page) uses it anyway",
                            a.description
                        )))
                    }
                    Ok(_) => {}
                }
                let probe = Rng::new(0x5EED).vec(package.info.input.len(), -2.0, 2.0);
                let (gpu, diff) = match Self::checked_gpu(package, &cpu, &probe).await {
                    Ok(g) => g,
                    Err(e) => return Ok(Self::on_cpu(cpu, e.to_string())),
                };
                // Both warm now (one run each in the self-check): time a few runs of each and keep the faster.
                let timed = async {
                    let g = time_runs(|| gpu.run(&probe)).await?;
                    let c = time_runs(|| std::future::ready(cpu.run(&probe))).await?;
                    Ok::<_, InferenceError>((g, c))
                };
                let (g, c) = match timed.await {
                    Ok(t) => t,
                    Err(e) => return Ok(Self::on_cpu(cpu, format!("WebGPU failed while being timed: {e}"))),
                };
                let speed = format!("WebGPU {g:.1} ms vs CPU {c:.1} ms per scan");
                if c <= g {
                    let mut engine = Self::on_cpu(cpu, format!("the CPU is faster on this device ({speed}, median of {SPEED_RUNS})"));
                    engine.status.speed = Some(speed);
                    return Ok(engine);
                }
                let adapter = Some(gpu.adapter().to_string());
                Ok(Engine {
                    primary: Backend::Gpu(gpu),
                    fallback: Some(cpu),
                    status: BackendStatus { kind: BackendKind::Gpu, adapter, fallback_reason: None, self_check: Some(diff), speed: Some(speed) },
                    load_phases: Vec::new(),
                })
            }
        }
    }

    fn on_cpu(cpu: CpuBackend, reason: String) -> Self {
        Engine { primary: Backend::Cpu(cpu), fallback: None, status: BackendStatus::cpu(Some(reason)), load_phases: Vec::new() }
    }

    /// The CPU backend alone (synchronous).
    pub fn cpu(package: &ModelPackage) -> Result<Self, InferenceError> {
        let cpu = CpuBackend::load(package)?;
        let load_phases = cpu.load_phases().to_vec();
        Ok(Engine { primary: Backend::Cpu(cpu), fallback: None, status: BackendStatus::cpu(None), load_phases })
    }

    /// How long each part of loading took (the CPU backend's steps, then WebGPU's when it was tried).
    pub fn load_phases(&self) -> &[Phase] {
        &self.load_phases
    }

    /// A per-operation profile of `runs` inferences of `input` on the
    /// backend in use: tract's operations timed on the CPU, the compute
    /// passes by the device's timestamps on WebGPU.
    pub async fn profile(&self, input: &[f32], runs: usize) -> Result<Profile, InferenceError> {
        match &self.primary {
            Backend::Cpu(c) => c.profile(input, runs),
            Backend::Gpu(g) => g.profile(input, runs).await,
        }
    }

    /// Records why the CPU runs when the caller decided it (the page, which
    /// sees the browser's adapter details that wgpu does not pass on).
    pub fn set_cpu_reason(&mut self, reason: String) {
        if self.status.kind == BackendKind::Cpu {
            self.status.fallback_reason = Some(reason);
        }
    }

    /// Loads the GPU backend and compares it with the CPU on a fixed input.
    async fn checked_gpu(package: &ModelPackage, cpu: &CpuBackend, probe: &[f32]) -> Result<(GpuBackend, f32), InferenceError> {
        let gpu = GpuBackend::load(package).await?;
        let want = cpu.run(probe)?;
        let got = gpu.run(probe).await?;
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
                    self.status = BackendStatus::cpu(Some(format!("WebGPU failed while running: {e}")));
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
