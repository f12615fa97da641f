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
    /// Also time onnxruntime (Python, CPU, 1 thread, all graph optimisations) on the same file and input, in
    /// alternating rounds, and report the ratio: on a shared machine only a ratio measured in one run means
    /// anything. Needs onnxruntime: scripts/setup bench (or MRISCREEN_PYTHON naming a Python that has it).
    #[arg(long)]
    compare: bool,
    /// Alternating rounds of --compare (each backend `--runs` timed runs per round).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Also time every operation over `--runs` more runs and write the profile by operation kind and the
    /// slowest nodes into the JSON (`profile`): tract's optimised graph on the CPU, each compute pass by the
    /// device's timestamps with --backend gpu. The load's phases are always there.
    #[arg(long)]
    profile: bool,
}

/// The peer's timing loop: onnxruntime on one thread, the same warm-up and run counts, medians in ms as JSON.
const ORT_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
import onnxruntime as ort
model, data, name, shape, warmup, runs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
o = ort.SessionOptions()
o.intra_op_num_threads = 1
o.inter_op_num_threads = 1
o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
t0 = time.perf_counter()
s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
load_ms = (time.perf_counter() - t0) * 1e3
x = np.fromfile(data, dtype="<f4").reshape(shape)
for _ in range(warmup):
    s.run(None, {name: x})
ms = []
for _ in range(runs):
    t = time.perf_counter()
    out = s.run(None, {name: x})
    ms.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"version": ort.__version__, "load_ms": load_ms, "samples_ms": ms, "logits": [float(v) for v in np.asarray(out[0]).ravel()]}))
"#;

/// The Python that has onnxruntime: MRISCREEN_PYTHON, else the venv `scripts/setup bench` makes.
fn peer_python() -> PathBuf {
    std::env::var_os("MRISCREEN_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache/bench-venv/bin/python"))
}

/// One onnxruntime round: (samples in ms, version, load ms, logits).
fn ort_round(model: &std::path::Path, data: &std::path::Path, name: &str, shape: &[usize], warmup: usize, runs: usize) -> Result<serde_json::Value> {
    let python = peer_python();
    let out = std::process::Command::new(&python)
        .args(["-c", ORT_SCRIPT])
        .arg(model)
        .arg(data)
        .arg(name)
        .arg(serde_json::to_string(shape)?)
        .arg(warmup.to_string())
        .arg(runs.to_string())
        .output()
        .with_context(|| format!("starting {} (run scripts/setup bench, or set MRISCREEN_PYTHON to a Python with onnxruntime)", python.display()))?;
    if !out.status.success() {
        bail!(
            "onnxruntime failed ({}): {}; run scripts/setup bench, or set MRISCREEN_PYTHON to a Python with onnxruntime",
            python.display(),
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message")
        );
    }
    serde_json::from_slice(&out.stdout).context("reading onnxruntime's timings")
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
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
    let (package, mut load_phases) = ModelPackage::read_timed(&bytes, &LoadOptions { overrides, ..Default::default() })?;
    let mut engine = block_on(Engine::load(&package, a.backend.into()))?;
    let status = engine.status().clone();
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    load_phases.extend(engine.load_phases().iter().cloned());

    // A fixed pseudo-random input: latency does not depend on the values.
    let mut rng = mriscreen::rng::Rng::new(1);
    let input = rng.vec(package.info.input.len(), -2.0, 2.0);
    eprintln!("{name}: load {load_ms:.0} ms; {} warm-up + {} timed runs", a.warmup, a.runs);
    for _ in 0..a.warmup {
        block_on(engine.run(&input))?;
    }
    let time_ours = |engine: &mut Engine| -> Result<Vec<f64>> {
        Ok((0..a.runs)
            .map(|_| {
                let t = Instant::now();
                block_on(engine.run(&input)).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?)
    };
    let mut ms = time_ours(&mut engine)?;
    let mut compare = serde_json::Value::Null;
    if a.compare {
        if a.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        let dir = std::env::temp_dir().join(format!("mriscreen-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (model_file, data_file) = (dir.join("model.onnx"), dir.join("input.f32"));
        std::fs::write(&model_file, &bytes)?;
        std::fs::write(&data_file, input.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
        let (mut ours, mut theirs, mut peer) = (vec![median(&ms)], Vec::new(), serde_json::Value::Null);
        for round in 0..a.rounds {
            if round > 0 {
                let more = time_ours(&mut engine)?;
                ours.push(median(&more));
                ms.extend(more);
            }
            let r = ort_round(&model_file, &data_file, &package.info.input_name, &package.info.input.shape(), a.warmup, a.runs);
            let r = r.inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })?;
            let samples: Vec<f64> = serde_json::from_value(r["samples_ms"].clone())?;
            theirs.push(median(&samples));
            eprintln!("round {}: ours {:.2} ms, onnxruntime {:.2} ms (medians)", round + 1, ours[round], theirs[round]);
            peer = r;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let (o, t) = (median(&ours), median(&theirs));
        let logits: Vec<f32> = serde_json::from_value(peer["logits"].clone()).unwrap_or_default();
        let want = block_on(engine.run(&input))?.0.logits;
        compare = json!({
            "peer": format!("onnxruntime {} (Python, CPUExecutionProvider, 1 thread, ORT_ENABLE_ALL)", peer["version"].as_str().unwrap_or("?")),
            "rounds": a.rounds,
            "ours_round_medians_ms": ours,
            "peer_round_medians_ms": theirs,
            "peer_load_ms": peer["load_ms"],
            "ratio_ours_over_peer": o / t,
            "relative_max_logit_difference": mriscreen::backend::relative_max_diff(&want, &logits),
        });
        println!("ours {o:.2} ms vs onnxruntime {t:.2} ms: ratio {:.2} (median of {} alternating rounds)", o / t, a.rounds);
    }
    let profile = if a.profile {
        let p = block_on(engine.profile(&input, a.runs))?;
        eprintln!("profile ({} runs, {:.2} ms per run, {:.2} ms in operations):", p.runs, p.total_ms, p.in_ops_ms);
        for o in p.ops.iter().take(8) {
            eprintln!("  {:<24} {:>3} node(s) {:>8.2} ms {:>5.1} %", o.op, o.nodes, o.ms, 100.0 * o.share);
        }
        serde_json::to_value(p)?
    } else {
        serde_json::Value::Null
    };
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
        "load_phases": load_phases,
        "median_ms": q(0.5),
        "p10_ms": q(0.1),
        "p90_ms": q(0.9),
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
        "samples_ms": ms,
        "machine": machine(),
        "compare": compare,
        "profile": profile,
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
