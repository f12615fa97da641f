//! `mriscreen predict` end to end, through the real binary.

#[path = "../../tests/common/mod.rs"]
mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mriscreen(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mriscreen")).args(args).current_dir(dir).output().expect("running mriscreen")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixtures(dir: &Path) {
    std::fs::write(dir.join("model.onnx"), common::tiny_model()).unwrap();
    std::fs::write(dir.join("scan.jpg"), common::jpeg(common::phantom_rgb(120, 100))).unwrap();
    std::fs::write(dir.join("scan8.png"), common::png(common::phantom(100, 120))).unwrap();
    std::fs::write(dir.join("scan16.png"), common::png(common::phantom16(128, 128))).unwrap();
    std::fs::write(dir.join("notes.png"), "this is a text file\n").unwrap();
}

#[test]
fn json_output_for_jpeg_png8_png16_dicom_and_a_bad_file() {
    let dir = tempdir("json");
    fixtures(&dir);
    // pydicom's MR_small.dcm, fetched by `scripts/setup test`.
    let dicom = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/dicom/MR_small.dcm");
    std::fs::copy(&dicom, dir.join("scan.dcm"))
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup test to fetch the DICOM test files", dicom.display()));
    let files = ["scan.jpg", "notes.png", "scan8.png", "scan16.png", "scan.dcm"];
    let out = mriscreen(&[&["predict", "--model", "model.onnx", "--json"][..], &files].concat(), &dir);
    assert_eq!(out.status.code(), Some(1), "a failed file makes the exit status 1");
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), files.len());
    for (item, file) in items.iter().zip(files) {
        assert_eq!(item["file"], file);
        if file == "notes.png" {
            assert!(item["error"].as_str().unwrap().contains("text file"), "{item}");
            continue;
        }
        let probs = item["probabilities"].as_object().unwrap();
        let keys: Vec<&str> = probs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["glioma", "meningioma", "notumor", "pituitary"], "class order kept");
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() <= 1e-5, "{file}: {sum}");
        assert!(probs.contains_key(item["label"].as_str().unwrap()));
        assert_eq!(item["backend"], "cpu");
        // Grey scans (scan.jpg is grey stored as RGB, with a slight tint) are not colour
        // inputs; this untrained model has no calibrated threshold, so the default one
        // refers its near-uniform answers, and says the threshold is a default.
        assert_eq!(item["colour_fraction"], 0.0, "{item}");
        assert_eq!(item["refer"], true, "{item}");
        let reasons = item["refer_reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 1, "{item}");
        assert_eq!(reasons[0]["kind"], "low_confidence", "{item}");
        assert_eq!(reasons[0]["calibrated"], false, "{item}");
        assert_eq!(reasons[0]["threshold"].as_f64().unwrap() as f32, mriscreen::referral::DEFAULT_THRESHOLD, "{item}");
        assert!(reasons[0]["message"].as_str().unwrap().contains("no calibrated"), "{item}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a diagnostic device"), "{stderr}");
    assert!(stderr.contains("untrained placeholder"), "{stderr}");
}

#[test]
fn a_colour_photo_is_referred_whatever_the_model_says() {
    let dir = tempdir("colour");
    fixtures(&dir);
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/progressive.jpg");
    std::fs::copy(&photo, dir.join("photo.jpg")).unwrap();
    let out = mriscreen(&["predict", "--model", "model.onnx", "--json", "photo.jpg", "scan8.png"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (photo, scan) = (&v[0], &v[1]);
    assert_eq!(photo["refer"], true, "{photo}");
    assert!(photo["colour_fraction"].as_f64().unwrap() > 0.5, "{photo}");
    assert_eq!(photo["refer_reasons"][0]["kind"], "colour", "{photo}");
    assert!(photo["refer_reasons"][0]["message"].as_str().unwrap().contains("colour image"), "{photo}");
    let kinds = |item: &Value| -> Vec<String> {
        item["refer_reasons"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect()
    };
    assert!(!kinds(scan).contains(&"colour".to_string()), "{scan}");

    let out = mriscreen(&["predict", "--model", "model.onnx", "photo.jpg", "scan8.png"], &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let photo_line = stdout.lines().find(|l| l.starts_with("photo.jpg")).unwrap();
    assert!(photo_line.contains("REFER"), "{stdout}");
    assert_eq!(stdout.matches("refer: colour image").count(), 1, "only the photo is in colour: {stdout}");
    assert!(stdout.contains("or the image is in colour"), "{stdout}");
}

/// The shipped default model's familiarity check: grey images that are not
/// brain MRI (scikit-image's photos and a page of text, fetched by `scripts/setup
/// test`), which the confidence threshold lets through, are referred as unlike
/// the training images; the page's four real samples are not.
#[test]
fn the_default_model_refers_grey_images_unlike_its_training_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let skimage = root.join(".cache/skimage");
    let strangers = ["camera.png", "coins.png", "page.png"].map(|f| skimage.join(f));
    for f in &strangers {
        assert!(f.exists(), "{}: run scripts/setup test to fetch the scikit-image photos", f.display());
    }
    let samples: Vec<PathBuf> = ["glioma", "meningioma", "notumor", "pituitary"].iter().map(|c| root.join(format!("www/samples/real-{c}.jpg"))).collect();
    let files: Vec<&str> = strangers.iter().chain(&samples).map(|p| p.to_str().unwrap()).collect();
    let out = mriscreen(&[&["predict", "--json"][..], &files].concat(), &root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for item in v.as_array().unwrap() {
        let file = item["file"].as_str().unwrap();
        let unlike = item["refer_reasons"].as_array().unwrap().iter().any(|r| r["kind"] == "unfamiliar");
        assert!(item["familiarity_distance"].is_number(), "{item}");
        if file.contains("/www/samples/") {
            assert!(!unlike && item["refer"] == false, "a real sample is not referred: {item}");
        } else {
            assert!(unlike && item["refer"] == true, "a grey non-MRI image is referred as unlike the training images: {item}");
            assert_eq!(item["colour_fraction"], 0.0, "{item}");
        }
    }
}

#[test]
fn table_output_and_default_model_from_manifest() {
    let dir = tempdir("table");
    fixtures(&dir);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let model = common::tiny_model();
    std::fs::write(dir.join("models/tiny.onnx"), &model).unwrap();
    let manifest = serde_json::json!({
        "default": "tiny",
        "models": [{ "id": "tiny", "file": "tiny.onnx", "sha256": mriscreen::model::sha256_hex(&model) }]
    });
    std::fs::write(dir.join("models/manifest.json"), manifest.to_string()).unwrap();
    let out = mriscreen(&["predict", "scan8.png"], &dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("models/tiny.onnx"), "{stdout}");
    assert!(stdout.contains("scan8.png"), "{stdout}");
    assert!(stdout.contains("glioma"), "{stdout}");

    // A tampered default model is refused by its manifest hash.
    std::fs::write(dir.join("models/tiny.onnx"), [&model[..], b"x"].concat()).unwrap();
    let out = mriscreen(&["predict", "scan8.png"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHA-256"));
}

#[test]
fn third_party_model_needs_and_takes_classes() {
    let dir = tempdir("third");
    fixtures(&dir);
    std::fs::write(dir.join("torch.onnx"), common::third_party(Default::default())).unwrap();
    let out = mriscreen(&["predict", "--model", "torch.onnx", "scan8.png"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--classes"));
    let out = mriscreen(
        &["predict", "--model", "torch.onnx", "--classes", "a,b,c", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--resize", "stretch", "--json", "scan8.png"],
        &dir,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["probabilities"].as_object().unwrap().len(), 3);
    let out = mriscreen(&["predict", "--model", "torch.onnx", "--classes", "a,b,c", "--mean", "1,2", "scan8.png"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mean"));
}

#[test]
fn missing_model_and_folders_are_explained() {
    let dir = tempdir("missing");
    fixtures(&dir);
    let out = mriscreen(&["predict", "scan8.png"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
    let out = mriscreen(&["predict", "--model", "model.onnx", "--json", "."], &dir);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v[0]["error"].as_str().unwrap().contains("folder"));
}

#[test]
fn many_files_in_parallel_keep_their_order_and_report_the_rate() {
    let dir = tempdir("parallel");
    fixtures(&dir);
    // Twelve files, a bad one among them, each a different image so that order mistakes show.
    let mut files = Vec::new();
    for k in 0..12u32 {
        let name = format!("scan{k:02}.png");
        if k == 5 {
            std::fs::write(dir.join(&name), "not an image").unwrap();
        } else {
            std::fs::write(dir.join(&name), common::png(common::phantom(90 + 3 * k, 100))).unwrap();
        }
        files.push(name);
    }
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    let one = mriscreen(&[&["predict", "--model", "model.onnx", "--json", "--threads", "1"][..], &names].concat(), &dir);
    let two = mriscreen(&[&["predict", "--model", "model.onnx", "--json", "--threads", "2"][..], &names].concat(), &dir);
    assert_eq!(two.status.code(), Some(1), "the bad file still counts");
    let (a, b): (Value, Value) = (serde_json::from_slice(&one.stdout).unwrap(), serde_json::from_slice(&two.stdout).unwrap());
    let order: Vec<&str> = b.as_array().unwrap().iter().map(|i| i["file"].as_str().unwrap()).collect();
    assert_eq!(order, names, "results in input order");
    assert_eq!(a, b, "two classifiers answer exactly as one");
    let stderr = String::from_utf8_lossy(&two.stderr);
    assert!(stderr.contains("12 file(s)") && stderr.contains("images/s on 2 classifier(s)") && stderr.contains("1 failed"), "{stderr}");

    // A reader that goes away early (`| head -1`) ends the run without a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mriscreen"))
        .args([&["predict", "--model", "model.onnx"][..], &names].concat())
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
