//! The reproduction's report: the paper's numbers beside ours row by row,
//! the effect of distillation, the seed spread, the honest size ratio, the
//! leakage of the split, the external test, every model's input contract and
//! every step's command and time. Read from what the steps wrote (compare/,
//! external/, models/, steps/); nothing here runs a model.

use super::{roles, Done, Scale, Settings};
use crate::data::Dataset;
use crate::files::write_atomic;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The paper's rows: (strategy, what the paper reported, our model).
const PAPER: [(&str, &str, &str); 13] = [
    ("Three-stage transfer learning, MobileNetV2 fp32", "82.20 % validation accuracy; 35.34 MB (a Keras file with optimizer state); no n, CI or test set", "mnv2-fp32-seed0"),
    ("Float16 post-training quantization", "82.37 % validation accuracy; 5.76 MB (TFLite); no n, CI or test", "mnv2-fp16-seed0"),
    ("int8 post-training quantization", "not evaluated", "mnv2-int8-ptq"),
    ("Quantization-aware training, int8", "described, not evaluated", "mnv2-int8-qat"),
    ("int4 post-training quantization", "not in the paper", "mnv2-int4-ptq"),
    ("Quantization-aware training, int4", "not in the paper", "mnv2-int4-qat"),
    ("DenseNet-101 teacher", "described, not evaluated", "dn101-teacher"),
    ("EfficientNet-Lite0 teacher", "not in the paper", "effnet-teacher"),
    ("Knowledge distillation DenseNet-101 → DenseNet-32", "reserved for future work", "dn32-kd-dn101"),
    ("DenseNet-32 without distillation (ablation)", "not in the paper", "dn32-no-kd"),
    ("Distillation EfficientNet-Lite0 → DenseNet-32", "not in the paper", "dn32-kd-effnet"),
    ("Low-bit PTQ of the student (int8)", "reserved for future work", "dn32-kd-dn101-int8-ptq"),
    ("QAT of the student (int8)", "not in the paper", "dn32-kd-dn101-int8-qat"),
];

const MAIN: &str = "vs-mobilenet-fp32";

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// One model's row in a comparison.
fn row<'a>(compares: &'a Value, group: &str, name: &str) -> Option<&'a Value> {
    compares.get(group)?["models"].as_array()?.iter().find(|m| m["name"] == name)
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or_else(|| "—".into(), |x| format!("{:.1} %", 100.0 * x))
}

fn accuracy(m: &Value) -> String {
    let t = &m["test"];
    format!("{} ({:.1}–{:.1} %), n = {}", pct(&t["accuracy"]), 100.0 * t["accuracy_ci95"][0].as_f64().unwrap_or(0.0), 100.0 * t["accuracy_ci95"][1].as_f64().unwrap_or(0.0), t["n"])
}

fn bytes(m: &Value) -> String {
    let mb = |v: &Value| v.as_f64().unwrap_or(0.0) / 1e6;
    format!("{:.2} MB ({:.2} MB gzip)", mb(&m["bytes"]), mb(&m["gzip_bytes"]))
}

/// "Δ −0.4 (−1.3 to +0.5), b/c 21/16, p = 0.511" against the comparison's parent.
fn against(m: &Value) -> String {
    let v = &m["vs_parent"]["test"];
    if v.is_null() {
        return "(the reference)".into();
    }
    let d = |x: &Value| format!("{:+.1}", 100.0 * x.as_f64().unwrap_or(0.0));
    format!(
        "Δ {} ({} to {}), b/c {}/{}, p = {}",
        d(&v["accuracy_difference"]),
        d(&v["ci95"][0]),
        d(&v["ci95"][1]),
        v["mcnemar"]["only_reference_right"],
        v["mcnemar"]["only_model_right"],
        p_value(v["mcnemar"]["p"].as_f64().unwrap_or(1.0))
    )
}

fn p_value(p: f64) -> String {
    if p < 1e-3 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Today's date (UTC) from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} cores of {cpu}", std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The source the run was built from, if it runs inside a git checkout (as `scripts/` do).
fn source() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match (git(&["rev-parse", "--short=12", "HEAD"]), git(&["status", "--porcelain", "--untracked-files=no"])) {
        (Some(commit), Some(changes)) => format!("commit {commit}{}", if changes.is_empty() { "" } else { " with local changes" }),
        _ => "not run inside a git checkout".into(),
    }
}

fn hms(secs: f64) -> String {
    super::hms(secs)
}

/// Writes report.md, report.json and the charts into `out`; returns the paths.
pub fn write(out: &Path, st: &Settings, scale: &Scale, steps: &[String], ds: Option<&Dataset>, started: Instant) -> Result<Vec<PathBuf>> {
    let done: Vec<Done> = steps.iter().filter_map(|n| super::read_done(out, n)).collect();
    let step_seconds: f64 = done.iter().map(|d| d.seconds).sum();
    let mut compares = serde_json::Map::new();
    if let Ok(dir) = std::fs::read_dir(out.join("compare")) {
        let mut groups: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        groups.sort();
        for g in groups {
            if let Some(v) = read_json(&g.join("compare.json")) {
                compares.insert(g.file_name().unwrap_or_default().to_string_lossy().into_owned(), v);
            }
        }
    }
    let compares = Value::Object(compares);
    let command = super::shell_line(&std::env::args().skip(1).collect::<Vec<_>>());
    let trained_on = models_info(out, scale.seeds);

    let mut md = String::new();
    let _ = writeln!(md, "# The paper's table, reproduced\n");
    let _ = writeln!(md, "**{}** Every number below is ours, measured by the commands listed at the end.\n", mriscreen::DISCLAIMER);
    let data_words = if st.quick { "a tiny SynthTumor set generated by the run itself (synthetic images, not patients; toy scale: it checks the steps, not the models)".to_string() } else { st.data.display().to_string() };
    let _ = writeln!(md, "- Data: {data_words}; what the models were trained on, in their own words: {}", trained_on.first().map_or("—", |m| m.1.as_str()));
    let _ = writeln!(md, "- Command: `{command}` on {}; {}; source {}, version {}", today(), machine(), source(), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(
        md,
        "- Time: {} of steps in all (summed over resumptions), this invocation {}",
        hms(step_seconds),
        hms(started.elapsed().as_secs_f64())
    );
    let _ = writeln!(
        md,
        "- Scale: {} px, batch {}, MobileNetV2 and EfficientNet epochs {} (three stages), DenseNet-101 {} epochs, DenseNet-32 students {} epochs, QAT {} epochs, {} seeds of MobileNetV2{}",
        st.size,
        scale.batch,
        scale.mnv2_epochs,
        scale.teacher_epochs,
        scale.student_epochs,
        scale.qat_epochs,
        scale.seeds,
        st.max_per_class.map_or_else(String::new, |m| format!(", at most {m} training images per class"))
    );
    if let Some(m) = compares.get(MAIN) {
        let _ = writeln!(
            md,
            "- Test split: n = {}{}; validation n = {}; 95 % Wilson intervals; McNemar: exact test, b = only the reference right, c = only the model right; Δ with a paired bootstrap interval ({} resamples)",
            m["test_n"],
            m["deduplicated_n"].as_u64().map_or_else(String::new, |d| format!(" (deduplicated subset n = {d})")),
            m["val_n"],
            m["bootstrap_resamples"]
        );
    }

    let _ = writeln!(md, "\n## The paper's strategies beside ours\n");
    let _ = writeln!(
        md,
        "The paper's figures are validation accuracy on a real Kaggle dataset with no n, interval or test set; ours are test accuracy on the test split named above, with n and a 95 % interval. \
         Every row is compared with MobileNetV2 fp32 (seed 0) on the same test images.\n"
    );
    let _ = writeln!(md, "| strategy | the paper | ours: model | file | test accuracy (95 % CI) | against MobileNetV2 fp32 | ECE (calibrated) | CPU latency |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let mut paper_rows = Vec::new();
    for (strategy, theirs, name) in PAPER {
        let Some(m) = row(&compares, MAIN, name) else {
            let _ = writeln!(md, "| {strategy} | {theirs} | {name} | missing: its step has not run | | | | |");
            continue;
        };
        let _ = writeln!(
            md,
            "| {strategy} | {theirs} | {name} | {} | {} | {} | {:.3} | {:.1} ms |",
            bytes(m),
            accuracy(m),
            against(m),
            m["ece_calibrated"].as_f64().unwrap_or(0.0),
            m["latency_ms_median"].as_f64().unwrap_or(0.0)
        );
        paper_rows.push(json!({ "strategy": strategy, "paper": theirs, "model": name, "ours": m }));
    }

    let _ = writeln!(md, "\n## Distillation: what the teacher buys\n");
    let _ = writeln!(md, "The same DenseNet-32 student, schedule and seed, with and without a teacher; each compared with the student trained without one.\n");
    let _ = writeln!(md, "| student | file | test accuracy (95 % CI) | against the undistilled student |");
    let _ = writeln!(md, "|---|---|---|---|");
    for name in ["dn32-no-kd", "dn32-kd-dn101", "dn32-kd-effnet", "dn32-kd-dn101-int8-ptq", "dn32-kd-dn101-int8-qat"] {
        if let Some(m) = row(&compares, "students-vs-no-kd", name) {
            let _ = writeln!(md, "| {name} | {} | {} | {} |", bytes(m), accuracy(m), against(m));
        }
    }
    let _ = writeln!(md, "\nThe int8 students against their own fp32 parent (dn32-kd-dn101):\n");
    let _ = writeln!(md, "| model | file (of fp32) | test accuracy (95 % CI) | against dn32-kd-dn101 |");
    let _ = writeln!(md, "|---|---|---|---|");
    for name in ["dn32-kd-dn101-int8-ptq", "dn32-kd-dn101-int8-qat"] {
        if let Some(m) = row(&compares, "student-int8-vs-fp32", name) {
            let _ = writeln!(md, "| {name} | {} ({}) | {} | {} |", bytes(m), pct(&m["bytes_ratio"]), accuracy(m), against(m));
        }
    }

    // Seeds: each seed's fp32 and its own fp16, so run-to-run noise stands beside the quantization effect.
    let _ = writeln!(md, "\n## Seed spread (MobileNetV2, {} seeds, one split)\n", scale.seeds);
    let _ = writeln!(md, "| seed | fp32 test accuracy | fp16 test accuracy | fp16 against its fp32 |");
    let _ = writeln!(md, "|---|---|---|---|");
    let (mut fp32, mut fp16, mut delta, mut bars) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..scale.seeds {
        let group = if k == 0 { MAIN.to_string() } else { format!("seed{k}") };
        let (Some(p), Some(f)) = (row(&compares, &group, &format!("mnv2-fp32-seed{k}")), row(&compares, &group, &format!("mnv2-fp16-seed{k}"))) else { continue };
        let a = |m: &Value| m["test"]["accuracy"].as_f64().unwrap_or(0.0);
        fp32.push(a(p));
        fp16.push(a(f));
        delta.push(a(f) - a(p));
        let bar = |m: &Value| [m["test"]["accuracy_ci95"][0].as_f64().unwrap_or(0.0), a(m), m["test"]["accuracy_ci95"][1].as_f64().unwrap_or(0.0)];
        bars.push((k, bar(p), bar(f)));
        let _ = writeln!(md, "| {k} | {} | {} | {} |", accuracy(p), accuracy(f), against(f));
    }
    let seeds_json = if fp32.is_empty() {
        Value::Null
    } else {
        let (m32, s32) = mean_sd(&fp32);
        let (m16, s16) = mean_sd(&fp16);
        let (md_, sd_) = mean_sd(&delta);
        let spread = fp32.iter().fold(f64::MIN, |a, &b| a.max(b)) - fp32.iter().fold(f64::MAX, |a, &b| a.min(b));
        let _ = writeln!(
            md,
            "| mean ± sd | {:.1} ± {:.1} % | {:.1} ± {:.1} % | Δ {:+.2} ± {:.2} points |\n\nThe fp32 models differ from one another by up to {:.1} points (seed alone); fp16 moves each by {:+.2} points on average.",
            100.0 * m32,
            100.0 * s32,
            100.0 * m16,
            100.0 * s16,
            100.0 * md_,
            100.0 * sd_,
            100.0 * spread,
            100.0 * md_
        );
        json!({ "fp32": fp32, "fp16": fp16, "fp16_minus_fp32": delta, "fp32_mean": m32, "fp32_sd": s32, "fp16_mean": m16, "fp16_sd": s16, "fp32_range": spread })
    };

    // The size ratio, honestly.
    let _ = writeln!(md, "\n## File size, honestly\n");
    let size = match (row(&compares, MAIN, "mnv2-fp32-seed0"), row(&compares, MAIN, "mnv2-fp16-seed0")) {
        (Some(p), Some(f)) => {
            let r = p["bytes"].as_f64().unwrap_or(0.0) / f["bytes"].as_f64().unwrap_or(1.0).max(1.0);
            let g = p["gzip_bytes"].as_f64().unwrap_or(0.0) / f["gzip_bytes"].as_f64().unwrap_or(1.0).max(1.0);
            let _ = writeln!(
                md,
                "The paper's 6.14× (35.34 MB → 5.76 MB) compares a Keras file that also holds the optimizer's state with a TFLite file. \
                 Weight for weight, fp32 → fp16 halves the bytes: here {} → {}, {r:.2}× ({g:.2}× gzipped).",
                bytes(p),
                bytes(f)
            );
            json!({ "paper": { "fp32_mb": 35.34, "fp16_mb": 5.76, "ratio": 35.34 / 5.76 }, "ours": { "ratio": r, "gzip_ratio": g } })
        }
        _ => Value::Null,
    };

    let _ = writeln!(md, "\n## Leakage of the split\n");
    match ds {
        Some(ds) => {
            let _ = writeln!(md, "```\n{}```", ds.report.summary());
        }
        None => {
            let _ = writeln!(md, "The dataset was not loaded.");
        }
    }

    let _ = writeln!(md, "\n## External test\n");
    let mut external = Vec::new();
    match &st.external {
        None => {
            let _ = writeln!(
                md,
                "No external dataset was given (`--external DIR`). Every figure above is on held-out images of the same source the models were trained on; \
                 how they do on other scanners, sequences or populations is not measured here."
            );
        }
        Some(dir) => {
            let _ = writeln!(md, "Every model on every image of {} (a second dataset; none of it used for training, choice or calibration):\n", dir.display());
            let _ = writeln!(md, "| model | accuracy (95 % CI) |\n|---|---|");
            for r in roles(scale.seeds) {
                if let Some(e) = read_json(&out.join("external").join(format!("{}.json", r.name))) {
                    let ci = &e["accuracy_ci95"];
                    let _ = writeln!(
                        md,
                        "| {} | {} ({:.1}–{:.1} %), n = {} |",
                        r.name,
                        pct(&e["accuracy"]),
                        100.0 * ci[0].as_f64().unwrap_or(0.0),
                        100.0 * ci[1].as_f64().unwrap_or(0.0),
                        e["n"]
                    );
                    external.push(json!({ "model": r.name, "accuracy": e["accuracy"], "accuracy_ci95": ci, "n": e["n"] }));
                }
            }
        }
    }

    let _ = writeln!(md, "\n## The models and their input contracts\n");
    let _ = writeln!(md, "Each model, teachers included, gets its own preprocessing from its file's metadata.\n");
    let _ = writeln!(md, "| model | what | architecture | precision | input | bytes | SHA-256 |\n|---|---|---|---|---|---|---|");
    let mut models_json = Vec::new();
    for r in roles(scale.seeds) {
        if let Some((_, _, info)) = trained_on.iter().find(|m| m.0 == r.name) {
            let i = &info.input;
            let input = format!("{}×{}, mean {:?}, std {:?}, {:?}, {:?}", i.width, i.height, i.mean, i.std, i.resize, i.intensity);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {input} | {} | {} |",
                r.name,
                r.what,
                info.arch.as_deref().unwrap_or("—"),
                info.precision,
                info.bytes,
                &info.sha256[..12.min(info.sha256.len())]
            );
            models_json.push(json!({ "name": r.name, "what": r.what, "arch": info.arch, "precision": info.precision.to_string(), "input": input, "bytes": info.bytes, "sha256": info.sha256, "trained_on": info.trained_on }));
        }
    }

    let _ = writeln!(md, "\n## Steps\n\n| step | time | what |\n|---|---|---|");
    for d in &done {
        let _ = writeln!(md, "| {} | {} | {} |", d.name, hms(d.seconds), d.what);
    }
    let _ = writeln!(md, "\nThe commands, in order:\n\n```sh");
    for d in &done {
        for c in &d.commands {
            let _ = writeln!(md, "{c}");
        }
    }
    let _ = writeln!(md, "```\n\nCharts: [seed spread](seeds.svg), [accuracy against file size](accuracy-vs-bytes.svg), [reliability](reliability.svg), [confusion matrices](confusion.svg) (all models against MobileNetV2 fp32).");

    let report = json!({
        "disclaimer": mriscreen::DISCLAIMER,
        "command": command,
        "date": today(),
        "machine": machine(),
        "source": source(),
        "version": env!("CARGO_PKG_VERSION"),
        "step_seconds": step_seconds,
        "settings": st,
        "paper_rows": paper_rows,
        "seeds": seeds_json,
        "size_ratio": size,
        "leakage": ds.map(|d| serde_json::to_value(&d.report).unwrap_or(Value::Null)),
        "external": if st.external.is_some() { Value::Array(external) } else { Value::Null },
        "models": models_json,
        "steps": done,
        "compare": compares,
    });
    let mut written = Vec::new();
    for (name, text) in [("report.md", md), ("report.json", serde_json::to_string_pretty(&report)? + "\n")] {
        write_atomic(&out.join(name), text)?;
        written.push(out.join(name));
    }
    if !bars.is_empty() {
        write_atomic(&out.join("seeds.svg"), seed_chart(&bars, compares[MAIN]["test_n"].as_u64().unwrap_or(0))?)?;
        written.push(out.join("seeds.svg"));
    }
    for chart in ["accuracy-vs-bytes.svg", "reliability.svg", "confusion.svg"] {
        let from = out.join("compare").join(MAIN).join(chart);
        if from.exists() {
            std::fs::copy(&from, out.join(chart)).with_context(|| format!("copying {}", from.display()))?;
            written.push(out.join(chart));
        }
    }
    Ok(written)
}

/// (name, trained_on, info) of every model in models/.
fn models_info(out: &Path, seeds: u64) -> Vec<(String, String, mriscreen::model::ModelInfo)> {
    roles(seeds)
        .into_iter()
        .filter_map(|r| {
            let bytes = std::fs::read(out.join("models").join(format!("{}.onnx", r.name))).ok()?;
            let p = mriscreen::ModelPackage::read(&bytes, &Default::default()).ok()?;
            Some((r.name, p.info.trained_on.clone().unwrap_or_else(|| "—".into()), p.info))
        })
        .collect()
}

/// Each seed's fp32 and fp16 test accuracy with their 95 % intervals: (seed, [lo, acc, hi] fp32, fp16).
fn seed_chart(bars: &[(u64, [f64; 3], [f64; 3])], n: u64) -> Result<String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the seed chart: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let lo = bars.iter().map(|b| b.1[0].min(b.2[0])).fold(1f64, f64::min);
        let y0 = (((lo - 0.02) * 50.0).floor() / 50.0).max(0.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("MobileNetV2 by seed: fp32 (blue) and fp16 (red), test n = {n}, 95 % CI"), ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(bars.len() as f64 - 0.5), y0..1.0f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_labels(bars.len())
            .x_label_formatter(&|v| format!("seed {}", v.round()))
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .y_desc("test accuracy")
            .draw()
            .map_err(|e| err(&e))?;
        for (offset, colour, pick) in [(-0.08, BLUE, 1usize), (0.08, RED, 2)] {
            let at = |b: &(u64, [f64; 3], [f64; 3])| (b.0 as f64 + offset, if pick == 1 { b.1 } else { b.2 });
            chart
                .draw_series(bars.iter().map(at).map(|(x, v)| ErrorBar::new_vertical(x, v[0], v[1], v[2], colour.stroke_width(2), 8)))
                .map_err(|e| err(&e))?;
            chart.draw_series(bars.iter().map(at).map(|(x, v)| Circle::new((x, v[1]), 4, colour.filled()))).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
