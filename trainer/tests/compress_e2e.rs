//! Compression end to end through the real binary, on a tiny SynthTumor set:
//! a model trained for one epoch → `quantize` to fp16, int8 and int4 (with
//! bias correction) → `calibrate` → `compare` (JSON, Markdown, SVG) →
//! quantization-aware training from the fp32 file; plus every bad input the
//! quantizer must refuse without writing anything.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mriscreen"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn refused(out: Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "expected a refusal saying {says:?}: {stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-compress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The tiny dataset and a model trained on it (one epoch of stage 3, from scratch).
fn fixture() -> &'static (PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let d = tmp("fixture");
        let data = d.join("synth");
        ok(
            bin().args(["synth", "--out"]).arg(&data).args(["--count", "40", "--test-count", "10", "--size-range", "64..96", "--seed", "3"]).output().unwrap(),
            "synth",
        );
        let run = d.join("run");
        ok(
            bin()
                .args(["train", "--data"])
                .arg(&data)
                .arg("--out")
                .arg(&run)
                .args(["--size", "64", "--batch", "16", "--seed", "5", "--no-pretrained", "--alpha", "0.35", "--epochs", "0,0,1"])
                .output()
                .unwrap(),
            "train",
        );
        (data, run.join("model.onnx"))
    })
}

fn quantize(model: &Path, to: &str, out: &Path, extra: &[&str]) -> Output {
    bin().arg("quantize").arg(model).args(["--to", to, "--out"]).arg(out).args(extra).output().unwrap()
}

#[test]
fn quantize_calibrate_compare() {
    let (data, parent) = fixture();
    let d = tmp("chain");
    let parent_bytes = std::fs::metadata(parent).unwrap().len() as f64;
    let mut variants = Vec::new();
    for (to, most) in [("fp16", 0.51), ("int8", 0.30), ("int4", 0.20)] {
        let raw = d.join(format!("{to}-raw.onnx"));
        let calib: Vec<&str> = if to == "fp16" { vec![] } else { vec!["--calib", data.to_str().unwrap(), "--calib-count", "8", "--verbose"] };
        let out = ok(quantize(parent, to, &raw, &calib), "quantize");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("tract check") && stdout.contains("not calibrated"), "{stdout}");
        let report = json(&d.join(format!("{to}-raw.quantize.json")));
        assert!(report["layers"].as_array().unwrap().iter().all(|l| l["sqnr_db"].as_f64().unwrap() > 0.0));
        if to != "fp16" {
            assert_eq!(report["bias_correction_images"], 8);
            assert!(stdout.contains("SQNR dB"), "--verbose prints every layer: {stdout}");
        }
        let size = std::fs::metadata(&raw).unwrap().len() as f64;
        assert!(size < most * parent_bytes, "{to}: {size} bytes of {parent_bytes}");
        // Calibrated afresh on the validation split.
        // Each in its own folder: calibrate writes calibration.json beside it.
        std::fs::create_dir_all(d.join(to)).unwrap();
        let model = d.join(to).join(format!("{to}.onnx"));
        ok(bin().args(["calibrate", "--model"]).arg(&raw).arg("--data").arg(data).args(["--seed", "5", "--out"]).arg(&model).output().unwrap(), "calibrate");
        let info = mriscreen::ModelPackage::read(&std::fs::read(&model).unwrap(), &Default::default()).unwrap().info;
        assert_eq!(info.precision.to_string(), to);
        assert!(info.refer_threshold.is_some() && info.metadata.contains_key("mriscreen.familiarity"));
        assert_eq!(info.parent_sha256.as_deref(), Some(mriscreen::model::sha256_hex(&std::fs::read(parent).unwrap()).as_str()));
        variants.push(model);
    }
    let out_dir = d.join("compare");
    let mut c = bin();
    c.args(["compare", "--parent"]).arg(parent).args(&variants).arg("--data").arg(data);
    c.args(["--seed", "5", "--resamples", "1000", "--latency-runs", "3", "--out"]).arg(&out_dir);
    let out = ok(c.output().unwrap(), "compare");
    assert!(String::from_utf8_lossy(&out.stdout).contains("McNemar"));
    let cmp = json(&out_dir.join("compare.json"));
    let models = cmp["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    assert_eq!(cmp["test_n"], 40);
    for m in &models[1..] {
        let v = &m["vs_parent"];
        let p = v["test"]["mcnemar"]["p"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        let [lo, hi] = [v["test"]["ci95"][0].as_f64().unwrap(), v["test"]["ci95"][1].as_f64().unwrap()];
        let diff = v["test"]["accuracy_difference"].as_f64().unwrap();
        assert!(lo <= diff && diff <= hi, "{v}");
        assert!(m["gzip_bytes"].as_u64().unwrap() > 0 && m["latency_ms_median"].as_f64().unwrap() > 0.0);
        assert_eq!(m["reliability"].as_array().unwrap().len(), 15);
    }
    assert!(cmp["chosen"].is_string(), "the choice rule names a model");
    for f in ["compare.md", "accuracy-vs-bytes.svg", "reliability.svg", "confusion.svg"] {
        let text = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert!(!text.is_empty() && (f.ends_with(".md") || text.contains("<svg")), "{f}");
    }
    // An existing comparison is not replaced without --force.
    refused(c.output().unwrap(), "--force");
}

#[test]
fn quantization_aware_training_exports_the_model_it_trained() {
    let (data, parent) = fixture();
    let d = tmp("qat");
    let run = d.join("run");
    let out = bin()
        .args(["train", "--data"])
        .arg(data)
        .arg("--out")
        .arg(&run)
        .args(["--size", "64", "--batch", "16", "--seed", "5", "--alpha", "0.35", "--epochs", "0,0,1", "--qat", "int4", "--init"])
        .arg(parent)
        .output()
        .unwrap();
    let out = ok(out, "train --qat");
    assert!(String::from_utf8_lossy(&out.stderr).contains("tract agrees"));
    let model = run.join("model.onnx");
    let info = mriscreen::ModelPackage::read(&std::fs::read(&model).unwrap(), &Default::default()).unwrap().info;
    assert_eq!(info.precision.to_string(), "int4");
    assert!(info.quantization.as_deref().unwrap().contains("\"method\":\"qat\""));
    assert_eq!(info.parent_sha256.as_deref(), Some(mriscreen::model::sha256_hex(&std::fs::read(parent).unwrap()).as_str()));
    assert!(run.join("model.quantize.json").exists() && run.join("calibration.json").exists());
    // QAT needs a model to start from and stage 3 only.
    let bad = bin().args(["train", "--data"]).arg(data).arg("--out").arg(d.join("x")).args(["--qat", "int8", "--epochs", "0,0,1"]).output().unwrap();
    refused(bad, "--init");
    let bad = bin().args(["train", "--data"]).arg(data).arg("--out").arg(d.join("y")).args(["--qat", "int8", "--epochs", "1,0,1", "--init"]).arg(parent).output().unwrap();
    refused(bad, "--epochs 0,0,N");
}

#[test]
fn bad_quantizer_inputs_are_refused_and_nothing_is_written() {
    let (data, parent) = fixture();
    let d = tmp("bad");
    let int8 = d.join("int8.onnx");
    ok(quantize(parent, "int8", &int8, &[]), "quantize");
    // Already quantized.
    let again = d.join("again.onnx");
    refused(quantize(&int8, "int4", &again, &[]), "already int8");
    assert!(!again.exists());
    // A block that is not a positive multiple of 2.
    for b in ["3", "0"] {
        refused(quantize(parent, "int4", &again, &["--block", b]), "positive multiple of 2");
    }
    // An existing --out is kept without --force.
    let before = std::fs::read(&int8).unwrap();
    refused(quantize(parent, "fp16", &int8, &[]), "--force");
    assert_eq!(std::fs::read(&int8).unwrap(), before);
    // The model itself as --out.
    refused(quantize(parent, "fp16", parent, &["--force"]), "another file");
    // Calibration folders: missing, empty, nothing readable.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    refused(quantize(parent, "int8", &again, &["--calib", d.join("missing").to_str().unwrap()]), "not a folder");
    refused(quantize(parent, "int8", &again, &["--calib", empty.to_str().unwrap()]), "no image files");
    let junk = d.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("a.png"), b"not a png").unwrap();
    refused(quantize(parent, "int8", &again, &["--calib", junk.to_str().unwrap()]), "could be read");
    assert!(!again.exists(), "nothing written by any refusal");
    // Not a model at all.
    let text = d.join("model.onnx");
    std::fs::write(&text, b"hello").unwrap();
    refused(quantize(&text, "int8", &again, &[]), "not a model");
    let _ = data;
}
