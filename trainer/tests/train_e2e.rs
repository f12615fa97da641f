//! The trainer end to end through the real binary, on a tiny SynthTumor set:
//! synth (200 images, 64–96 px) → train one epoch per stage at 64 px →
//! ONNX export verified by tract → evaluation → `predict` on a generated
//! image; plus resume after five kills at random points (every epoch once,
//! ending with the weights of a run never interrupted), and refusing to
//! overwrite a run.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mriscreen"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// One small synthetic dataset shared by the tests of this file.
fn dataset() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let d = tmp("synth");
        let out = bin()
            .args(["synth", "--out"])
            .arg(&d)
            .args(["--count", "40", "--test-count", "10", "--size-range", "64..96", "--seed", "3"])
            .output()
            .unwrap();
        ok(out, "synth");
        d
    })
}

fn train(out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["train", "--data"]).arg(dataset()).arg("--out").arg(out);
    // From random weights: these tests are about the run, not the ImageNet start
    // (the import has its own test), and they run from trainer/, not beside .cache/.
    c.args(["--size", "64", "--batch", "16", "--seed", "5", "--no-pretrained"]);
    c.args(extra);
    c
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn synth_train_export_evaluate_predict() {
    let run = tmp("run");
    let out = ok(train(&run, &["--epochs", "1,1,1"]).output().unwrap(), "train");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not a diagnostic device"), "{stdout}");
    assert!(stdout.contains("n = 40"), "the test split is the 40 Testing/ images: {stdout}");

    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics.as_array().unwrap().len(), 3, "one epoch per stage");
    let eval = json(&run.join("evaluation.json"));
    assert_eq!(eval["n"], 40);
    assert_eq!(eval["confusion"].as_array().unwrap().len(), 4);
    let report = json(&run.join("dataset_report.json"));
    assert!(report["counts"].is_array());

    // The exported model carries the contract's metadata and runs in predict.
    let image = std::fs::read_dir(dataset().join("Testing/glioma")).unwrap().next().unwrap().unwrap().path();
    let model = run.join("model.onnx");
    let out = ok(bin().args(["predict", "--json", "--model"]).arg(&model).arg(&image).output().unwrap(), "predict");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probs = v[0]["probabilities"].as_object().unwrap();
    assert_eq!(probs.keys().map(String::as_str).collect::<Vec<_>>(), ["glioma", "meningioma", "notumor", "pituitary"]);
    let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mobilenet_v2_1.0") && stderr.contains("SynthTumor"), "{stderr}");

    // Calibrated on the 24 validation images; the threshold is in the file.
    let cal = json(&run.join("calibration.json"));
    assert_eq!(cal["n"], 24);
    let t = cal["temperature"].as_f64().unwrap();
    let refer = cal["refer_threshold"].as_f64().unwrap();
    assert!((0.05..=20.0).contains(&t) && (0.0..=1.0).contains(&refer), "{cal}");
    let package = mriscreen::ModelPackage::read(&std::fs::read(&model).unwrap(), &Default::default()).unwrap();
    assert!((f64::from(package.info.temperature) - t).abs() < 1e-5);
    assert!((f64::from(package.info.refer_threshold.expect("calibrated threshold")) - refer).abs() < 1e-5);
    // The familiarity statistics: fitted on the training split, limit from validation.
    let limit = cal["familiarity_limit"].as_f64().expect("a familiarity limit");
    assert!(limit.is_finite() && limit > 0.0, "{cal}");
    assert!(cal["familiarity_train_n"].as_u64().unwrap() > 0, "{cal}");
    let stats = mriscreen::familiar::Familiarity::from_json(&package.info.metadata["mriscreen.familiarity"], 4).unwrap();
    assert!((f64::from(stats.limit) - limit).abs() < 1e-4 * limit);
    // The card's calibration section is the one calibration.json carries.
    let section = cal["card_section"].as_str().unwrap();
    assert!(section.starts_with("## Calibration and referral") && section.contains("Familiarity:"), "{section}");
    assert!(std::fs::read_to_string(run.join("model_card.md")).unwrap().contains(section));
    // `calibrate` refuses an already calibrated model and never overwrites without --force.
    let again = run.join("again.onnx");
    let calibrate = |out: &Path, extra: &[&str]| {
        let mut c = bin();
        c.args(["calibrate", "--model"]).arg(&model).arg("--data").arg(dataset()).args(["--seed", "5", "--out"]).arg(out).args(extra);
        c.output().unwrap()
    };
    let out = calibrate(&again, &["--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already calibrated"));
    assert!(!again.exists());
    let out = calibrate(&model, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    // With --again everything is fitted afresh from the raw outputs: the same numbers.
    let out = calibrate(&again, &["--again"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("calibration.json exists"), "the run's report is not overwritten");
    let out = calibrate(&again, &["--again", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let redone = mriscreen::ModelPackage::read(&std::fs::read(&again).unwrap(), &Default::default()).unwrap();
    assert!((redone.info.temperature - package.info.temperature).abs() < 1e-5);
    assert_eq!(redone.info.metadata["mriscreen.familiarity"], package.info.metadata["mriscreen.familiarity"]);

    // An existing run is never overwritten without --force.
    let out = train(&run, &["--epochs", "1,0,0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(model.exists(), "the earlier run's files are still there");
}

/// What `predict --json` gives for every test image of the toy set with `model`: (file, probabilities).
fn test_predictions(model: &Path) -> Vec<(String, Value)> {
    let mut images: Vec<PathBuf> = std::fs::read_dir(dataset().join("Testing"))
        .unwrap()
        .flat_map(|class| std::fs::read_dir(class.unwrap().path()).unwrap().map(|f| f.unwrap().path()))
        .collect();
    images.sort();
    let out = ok(bin().args(["predict", "--json", "--threads", "1", "--model"]).arg(model).args(&images).output().unwrap(), "predict");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().iter().map(|p| (p["file"].to_string(), p["probabilities"].clone())).collect()
}

#[test]
fn killed_five_times_at_random_points_resume_ends_with_the_uninterrupted_model() {
    const EPOCHS: [&str; 2] = ["--epochs", "1,1,1"];
    let reference = tmp("kill-reference");
    let start = Instant::now();
    ok(train(&reference, &EPOCHS).output().unwrap(), "uninterrupted run");
    let whole = start.elapsed();

    // Five SIGKILLs: attempt i waits until min(i, 3) epochs are done in all
    // (0: while the data loads or the first epoch runs; 3: during the export
    // and evaluation, or after), then a random share of a quarter of the whole
    // run (a fixed sequence); every attempt after the first passes --resume.
    let run = tmp("killed");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut kills = Vec::new();
    let done = |dir: &Path| {
        std::fs::read_to_string(dir.join("metrics.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .map_or(0, |v| v.as_array().map_or(0, Vec::len))
    };
    for attempt in 0..5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let wait = (whole / 4).mul_f64((x >> 11) as f64 / (1u64 << 53) as f64);
        let mut args = EPOCHS.to_vec();
        if attempt > 0 {
            args.push("--resume");
        }
        let mut child = train(&run, &args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let t0 = Instant::now();
        let after = attempt.min(3);
        while done(&run) < after && child.try_wait().unwrap().is_none() {
            assert!(t0.elapsed() < Duration::from_secs(600), "training made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let t1 = Instant::now();
        while t1.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        kills.push(format!(
            "{:.2} s after epoch {after}{} ({} epochs saved)",
            wait.as_secs_f64(),
            if finished { ", already finished" } else { "" },
            done(&run)
        ));
    }
    eprintln!("whole run {:.1} s; killed at {}", whole.as_secs_f64(), kills.join("; "));
    let out = ok(train(&run, &[&EPOCHS[..], &["--resume"]].concat()).output().unwrap(), "the last --resume");
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Every epoch exactly once, and the same weights: the same probabilities, to the last digit, on every test image.
    let epochs = |dir: &Path| -> Vec<(u64, u64)> {
        json(&dir.join("metrics.json")).as_array().unwrap().iter().map(|m| (m["stage"].as_u64().unwrap(), m["epoch"].as_u64().unwrap())).collect()
    };
    assert_eq!(epochs(&run), epochs(&reference), "{stderr}");
    assert_eq!(json(&run.join("evaluation.json"))["accuracy"], json(&reference.join("evaluation.json"))["accuracy"]);
    let (got, want) = (test_predictions(&run.join("model.onnx")), test_predictions(&reference.join("model.onnx")));
    assert_eq!(got.len(), 40);
    assert_eq!(got, want, "killed at {}", kills.join("; "));
    for dir in [&run, &reference] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn resume_before_the_first_checkpoint_starts_again_and_unknown_folders_are_refused() {
    // A folder with only what a run writes as it starts: --resume starts from the beginning.
    let run = tmp("early");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("train_config.json"), "{}").unwrap();
    std::fs::write(run.join("checkpoint.safetensors.tmp"), b"half a checkpoint").unwrap();
    let out = ok(train(&run, &["--epochs", "1,0,0", "--resume"]).output().unwrap(), "resume with no checkpoint");
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting from the beginning"));
    assert!(run.join("model.onnx").exists());
    // Someone else's folder: refused, and left as it was.
    let other = tmp("not-a-run");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let out = train(&other, &["--epochs", "1,0,0", "--resume"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no checkpoint.safetensors") && stderr.contains("notes.txt"), "{stderr}");
    assert_eq!(std::fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    for dir in [&run, &other] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bad_datasets_are_explained() {
    let empty = tmp("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = bin().args(["train", "--data"]).arg(&empty).arg("--out").arg(tmp("empty-out")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&empty.display().to_string()), "{err}");

    let unknown = tmp("unknown");
    for class in ["glioma", "meningioma", "notumor", "pituitary", "astrocytoma"] {
        std::fs::create_dir_all(unknown.join(class)).unwrap();
    }
    let out = bin().args(["train", "--data"]).arg(&unknown).arg("--out").arg(tmp("unknown-out")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("astrocytoma") && err.contains("glioma_tumor"), "{err}");
}

fn distill(out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["distill", "--data"]).arg(dataset()).arg("--out").arg(out);
    c.args(["--size", "64", "--batch", "16", "--seed", "5"]);
    if !extra.contains(&"--epochs") {
        c.args(["--epochs", "0,0,1"]);
    }
    c.args(extra);
    c
}

fn random_teacher(name: &str, classes: &str) -> PathBuf {
    let path = tmp(name).with_extension("onnx");
    let args = ["random-model", "--arch", "mobilenet-v2", "--alpha", "0.35", "--size", "96", "--seed", "9", "--classes", classes, "--out"];
    ok(bin().args(args).arg(&path).output().unwrap(), "random-model");
    path
}

#[test]
fn distill_a_student_with_and_without_its_teacher() {
    // A teacher at another input size, its classes in another order.
    let teacher = random_teacher("teacher", "pituitary,notumor,meningioma,glioma");
    let run = tmp("distilled");
    ok(distill(&run, &["--teacher", teacher.to_str().unwrap(), "--tau", "2"]).output().unwrap(), "distill");
    let config = json(&run.join("train_config.json"));
    assert_eq!(config["distill"]["alpha"], 0.7, "{config}");
    assert_eq!(config["distill"]["tau"], 2.0);
    let package = mriscreen::ModelPackage::read(&std::fs::read(run.join("model.onnx")).unwrap(), &Default::default()).unwrap();
    assert_eq!(package.info.arch.as_deref(), Some("densenet32"), "the default student");
    let teacher_sha = mriscreen::model::sha256_hex(&std::fs::read(&teacher).unwrap());
    let trained_on = package.info.trained_on.unwrap();
    assert!(trained_on.contains("distilled from") && trained_on.contains(&teacher_sha[..12]) && trained_on.contains("τ = 2"), "{trained_on}");
    let card = std::fs::read_to_string(run.join("model_card.md")).unwrap();
    assert!(card.contains("distilled from") && card.contains("not a diagnostic device"), "{card}");
    assert_eq!(json(&run.join("evaluation.json"))["n"], 40);

    // The ablation: the same run without a teacher.
    let plain = tmp("undistilled");
    ok(distill(&plain, &["--alpha", "0"]).output().unwrap(), "distill --alpha 0");
    let card = std::fs::read_to_string(plain.join("model_card.md")).unwrap();
    assert!(card.contains("no distillation"), "{card}");

    // What cannot work is refused before any folder is made.
    let refused = tmp("refused");
    let out = distill(&refused, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--teacher is required"), "{}", String::from_utf8_lossy(&out.stderr));
    let stranger = random_teacher("stranger", "glioma_tumor,meningioma_tumor,no_tumor,pituitary_tumor");
    let out = distill(&refused, &["--teacher", stranger.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no_tumor") && stderr.contains("notumor") && stderr.contains("--teacher-map"), "{stderr}");
    assert!(!refused.exists(), "a run that cannot start leaves nothing behind");
    let map = "glioma_tumor=glioma,meningioma_tumor=meningioma,no_tumor=notumor,pituitary_tumor=pituitary";
    let out = distill(&refused, &["--teacher", stranger.to_str().unwrap(), "--teacher-map", map, "--epochs", "1,0,0", "--student", "mobilenet-v2", "--width", "0.35"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let package = mriscreen::ModelPackage::read(&std::fs::read(refused.join("model.onnx")).unwrap(), &Default::default()).unwrap();
    assert_eq!(package.info.arch.as_deref(), Some("mobilenet_v2_0.35"), "--student and --width");
    for d in [run, plain, refused, teacher, stranger] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}

fn reproduce(out: &Path, extra: &[&str]) -> Output {
    bin().args(["reproduce", "--quick", "--out"]).arg(out).args(extra).output().unwrap()
}

fn refused(out: Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in:\n{stderr}");
    }
}

#[test]
fn reproduce_the_whole_table_at_toy_scale_and_resume_it() {
    let out = tmp("reproduce");
    // Stop part-way (as a kill between steps would), then the same command finishes the rest.
    let first = ok(reproduce(&out, &["--until", "mnv2-fp16-seed0"]), "reproduce --until");
    assert!(String::from_utf8_lossy(&first.stderr).contains("stopped after mnv2-fp16-seed0"));
    assert!(out.join("steps/mnv2-fp16-seed0.json").exists());
    assert!(!out.join("steps/mnv2-fp32-seed1.json").exists(), "nothing after --until ran");
    // A training step that was interrupted after its last checkpoint continues from it.
    std::fs::remove_file(out.join("steps/mnv2-fp32-seed0.json")).unwrap();
    let epochs = json(&out.join("runs/mnv2-fp32-seed0/metrics.json")).as_array().unwrap().len();
    let second = ok(reproduce(&out, &[]), "reproduce (resumed)");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("mnv2-fp16-seed0: done already"), "{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("mnv2-fp32-seed0 --resume"), "the interrupted run resumes: {stderr}");
    assert_eq!(json(&out.join("runs/mnv2-fp32-seed0/metrics.json")).as_array().unwrap().len(), epochs, "no epoch trained twice");

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("not a diagnostic device") && md.contains("synthetic"), "{md}");
    assert!(!md.contains("its step has not run"), "every strategy has measured numbers:\n{md}");
    for strategy in ["Three-stage transfer learning", "Float16", "Quantization-aware training, int8", "DenseNet-101 → DenseNet-32", "Low-bit PTQ of the student"] {
        assert!(md.contains(strategy), "{strategy}");
    }
    assert!(md.contains("n = 32") && md.contains("6.14×") && md.contains("No external dataset was given"), "{md}");
    let report = json(&out.join("report.json"));
    let rows = report["paper_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 13);
    // Every row but the reference carries its McNemar test against MobileNetV2 fp32.
    assert!(rows[1..].iter().all(|r| r["ours"]["vs_parent"]["test"]["mcnemar"]["p"].is_number()), "{report}");
    assert_eq!(report["seeds"]["fp32"].as_array().unwrap().len(), 3);
    assert!((report["size_ratio"]["ours"]["ratio"].as_f64().unwrap() - 2.0).abs() < 0.1, "fp32 → fp16 halves the weights");
    let student = std::fs::metadata(out.join("models/dn32-kd-dn101-int8-ptq.onnx")).unwrap().len();
    assert!(student <= 450_000, "the int8 student is {student} bytes");
    assert!(out.join("accuracy-vs-bytes.svg").exists());
    // Its models' trainer metadata says what they learnt from.
    let package = mriscreen::ModelPackage::read(&std::fs::read(out.join("models/dn32-kd-dn101.onnx")).unwrap(), &Default::default()).unwrap();
    assert!(package.info.trained_on.unwrap().contains("distilled from"));

    // Other settings on the same folder are refused; so is a folder that is not a reproduction.
    refused(reproduce(&out, &["--size", "64"]), &["other settings", "--force"]);
    let other = tmp("not-a-reproduction");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    refused(reproduce(&other, &["--force"]), &["not a reproduction"]);
    assert_eq!(std::fs::read_to_string(other.join("notes.txt")).unwrap(), "mine", "nothing of the user's is touched");
    refused(reproduce(&out, &["--until", "nonsense"]), &["no such step", "dn32-kd-dn101-int8-ptq"]);
    // A finished step made by another command (another scale, say) is not mixed into this plan.
    let marker = out.join("steps/mnv2-int8-ptq.json");
    let mut done = json(&marker);
    done["commands"][1] = Value::String("mriscreen quantize --to int8 something-else".into());
    std::fs::write(&marker, done.to_string()).unwrap();
    refused(reproduce(&out, &[]), &["mnv2-int8-ptq finished with another command", "--force"]);
    // An external set with a class the models do not know.
    let external = tmp("external-unknown");
    std::fs::create_dir_all(external.join("astrocytoma")).unwrap();
    let image = dataset().join("Testing/glioma").read_dir().unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&image, external.join("astrocytoma").join(image.file_name().unwrap())).unwrap();
    refused(reproduce(&tmp("reproduce-external"), &["--external", external.to_str().unwrap()]), &["astrocytoma", "glioma"]);
    for d in [out, other, external, tmp("reproduce-external")] {
        let _ = std::fs::remove_dir_all(&d);
    }
}
