//! `mriscreen bench`: CPU (tract) inference latency, written to a JSON file.
//! Not a test: numbers depend on the machine and are reported, never asserted.

use crate::files::read_limited;
use anyhow::{bail, Context, Result};
use crate::model_args::BackendArg;
use mriscreen::backend::Engine;
use mriscreen::block_on;
use mriscreen::model::random::{self, RandomNet};
use mriscreen::CLASSES;
use mriscreen::model::{parse_classes, LoadOptions, ModelPackage, Overrides};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model to time. Default: a random-weight MobileNetV2-1.0 at 224x224 with 4 classes.
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Class names, for a --model without mriscreen metadata: a,b,c.
    #[arg(long)]
    classes: Option<String>,
    /// Inference backend to time.
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Untimed runs first, to warm caches.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// JSON file to write the results to (parent folders are created).
    /// Default: bench/native-<backend>-latency.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let (name, bytes) = match &a.model {
        Some(p) => (p.display().to_string(), read_limited(p, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?),
        None => ("mobilenet_v2_1.0 (random weights)".into(), random::mobilenet_v2(1.0, &RandomNet::new(&CLASSES, 224, 0))),
    };
    let overrides = Overrides { classes: a.classes.as_deref().map(parse_classes), ..Default::default() };
    let t0 = Instant::now();
    let package = ModelPackage::read(&bytes, &LoadOptions { overrides, ..Default::default() })?;
    let mut engine = block_on(Engine::load(&package, a.backend.into()))?;
    let status = engine.status().clone();
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    // A fixed pseudo-random input: latency does not depend on the values.
    let mut rng = mriscreen::rng::Rng::new(1);
    let input = rng.vec(package.info.input.len(), -2.0, 2.0);
    eprintln!("{name}: load {load_ms:.0} ms; {} warm-up + {} timed runs", a.warmup, a.runs);
    for _ in 0..a.warmup {
        block_on(engine.run(&input))?;
    }
    let mut ms: Vec<f64> = (0..a.runs)
        .map(|_| {
            let t = Instant::now();
            block_on(engine.run(&input)).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    let report = json!({
        "benchmark": "native inference latency",
        "backend": status,
        "model": name,
        "arch": package.info.arch,
        "input_shape": package.info.input.shape(),
        "bytes": bytes.len(),
        "threads": 1,
        "warmup": a.warmup,
        "runs": a.runs,
        "load_ms": load_ms,
        "median_ms": q(0.5),
        "p10_ms": q(0.1),
        "p90_ms": q(0.9),
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
        "samples_ms": ms,
        "machine": machine(),
        "reference": "same machine class, MobileNetV2-1.0 224px, 1 thread: onnxruntime 5.6 ms, TFLite 5.0 ms (README, section Benchmark / issue 2)",
    });
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("bench/native-{}-latency.json", status.kind).to_lowercase()));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("median {:.2} ms (p10 {:.2}, p90 {:.2}) over {} runs -> {}", q(0.5), q(0.1), q(0.9), a.runs, out.display());
    Ok(ExitCode::SUCCESS)
}

fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()));
    json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu": cpu,
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
    })
}
