//! `mriscreen bench-train`: training throughput (images per second) of a
//! model at a given size and batch — forward, backward and AdamW step on
//! random inputs — written to a JSON file. Not a test: the number describes
//! the machine. Reference on this project's 2-core machine: TensorFlow 2.21 /
//! Keras trains MobileNetV2-1.0 at 224×224, batch 32, at 19.4 images/s.

use crate::models::{Arch, Model};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use mriscreen::rng::Rng;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model family: mobilenet-v2 (width set by --alpha), efficientnet-lite0, densenet121,
    /// densenet101 or densenet32.
    #[arg(long, default_value = "mobilenet-v2", value_parser = |s: &str| s.parse::<Arch>())]
    arch: Arch,
    /// MobileNetV2 width multiplier.
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Square input size.
    #[arg(long, default_value_t = 224)]
    size: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed steps (after one untimed warm-up step).
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// JSON file to write.
    #[arg(long, default_value = "bench/train-throughput.json")]
    out: PathBuf,
    /// Measure quantization-aware training instead (BatchNorm folded, weights fake-quantized).
    #[arg(long, value_enum)]
    qat: Option<crate::train::QatBits>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.steps == 0 || a.batch == 0 {
        bail!("--steps and --batch must be at least 1");
    }
    let arch = a.arch.with_alpha(a.alpha);
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &device), arch, 4, 0)?;
    let params: Vec<(String, candle_core::Var)> = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("parameters locked"))?
        .iter()
        .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut opt = crate::train::AdamW::new(params, 1e-4, 1e-4)?;
    let mut rng = Rng::new(7);
    let xs = Tensor::from_vec(rng.vec(a.batch * 3 * a.size * a.size, -1.0, 1.0), (a.batch, 3, a.size, a.size), &device)?;
    let labels: Vec<u32> = (0..a.batch).map(|i| (i % 4) as u32).collect();
    let scheme = a.qat.map(|q| match q {
        crate::train::QatBits::Int8 => mriscreen::model::quant::Scheme::int8(),
        crate::train::QatBits::Int4 => mriscreen::model::quant::Scheme::int4(mriscreen::model::quant::DEFAULT_BLOCK),
    });
    let mut phases = [0f64; 3];
    let mut step = || -> Result<f64> {
        let t = Instant::now();
        let logits = match scheme {
            Some(s) => model.forward_qat(&xs, s, true)?,
            None => model.forward_t(&xs, true)?,
        };
        let loss = crate::train::cross_entropy(&logits, &labels, 0.0, None)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        phases[0] += (t1 - t).as_secs_f64();
        phases[1] += (t2 - t1).as_secs_f64();
        phases[2] += t2.elapsed().as_secs_f64();
        Ok(t.elapsed().as_secs_f64())
    };
    step().context("warm-up step")?;
    let mut secs = Vec::with_capacity(a.steps);
    for i in 0..a.steps {
        secs.push(step()?);
        eprintln!("step {}/{}: {:.2} s ({:.1} img/s)", i + 1, a.steps, secs[i], a.batch as f64 / secs[i]);
    }
    drop(step);
    let total: f64 = secs.iter().sum();
    eprintln!("forward {:.2} s, backward {:.2} s, optimizer {:.2} s (summed, warm-up included)", phases[0], phases[1], phases[2]);
    let ips = (a.batch * a.steps) as f64 / total;
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let report = json!({
        "benchmark": "training throughput (forward + backward + AdamW), candle on the CPU",
        "arch": arch.name(), "size": a.size, "batch": a.batch, "steps": a.steps,
        "quantization_aware": scheme,
        "images_per_second": ips, "seconds_per_step": secs,
        "median_seconds_per_step": median, "images_per_second_at_median": a.batch as f64 / median,
        "phase_seconds_incl_warmup": { "forward": phases[0], "backward": phases[1], "optimizer": phases[2] },
        "threads": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "reference": "TensorFlow 2.21/Keras, MobileNetV2-1.0 224px batch 32, same 2-core machine class: 19.4 img/s",
    });
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&report)? + "\n")?;
    println!(
        "{:.1} images/s over {} steps, {:.1} at the median step ({}, {}×{}, batch {}) -> {}",
        ips, a.steps, a.batch as f64 / median, arch.name(), a.size, a.size, a.batch, a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
