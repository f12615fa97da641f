//! The dataset commands through the real binary, on small generated folders:
//! `leakage` (counts, contact sheets, bad flags) and `evaluate --external`
//! with `--binary` (a folder that is all test set and lacks classes).

use image::{GrayImage, Luma};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mriscreen"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-datacli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A grey image made of a few rings and stripes that depend on `seed`, far
/// apart in pHash from the images of other seeds.
fn image(seed: u32) -> GrayImage {
    let (fx, fy, cx) = (1.0 + (seed % 5) as f32, 1.0 + (seed / 5 % 5) as f32, 0.2 + 0.07 * (seed % 9) as f32);
    GrayImage::from_fn(80, 72, |x, y| {
        let (u, v) = (x as f32 / 80.0, y as f32 / 72.0);
        let r = ((u - cx).powi(2) + (v - 0.5).powi(2)).sqrt();
        let s = (fx * 6.0 * u).sin() * (fy * 5.0 * v).cos() + (18.0 * r + seed as f32).sin();
        Luma([(128.0 + 60.0 * s).clamp(0.0, 255.0) as u8])
    })
}

fn put(root: &Path, rel: &str, img: &GrayImage) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    img.save(&p).unwrap();
}

#[test]
fn leakage_counts_copies_and_draws_contact_sheets() {
    let data = tmp("leak-data");
    let mut seed = 0;
    for (split, n) in [("Training", 4), ("Testing", 2)] {
        for class in ["glioma", "meningioma", "notumor", "pituitary"] {
            for i in 0..n {
                seed += 1;
                put(&data, &format!("{split}/{class}/{i}.png"), &image(seed));
            }
        }
    }
    // One exact copy of a training image in Testing/.
    put(&data, "Testing/glioma/copy.png", &image(1));
    let out_dir = tmp("leak-out");
    let out = bin().args(["leakage", "--data"]).arg(&data).arg("--out").arg(&out_dir).args(["--max-distance", "8", "--per-sheet", "4"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let study: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("leakage.json")).unwrap()).unwrap();
    assert_eq!(study["images"], 25);
    assert_eq!(study["exact_across"], 1, "{study:#}");
    assert_eq!(study["by_distance"][0]["testing_with_training_copy"], 1);
    assert_eq!(study["training_per_class"], serde_json::json!([4, 4, 4, 4]));
    assert!(out_dir.join("pairs-d00.png").exists());
    let sheet = image::open(out_dir.join("pairs-d00.png")).unwrap();
    assert!(sheet.width() > 2 * 112 && sheet.height() >= 112);
    let md = std::fs::read_to_string(out_dir.join("leakage.md")).unwrap();
    assert!(md.contains("`Training/glioma/0.png` (glioma) | `Testing/glioma/copy.png` (glioma), distance 0, exact"), "{md}");

    // Bad flags and folders are explained, nothing is written.
    let out = bin().args(["leakage", "--data"]).arg(&data).arg("--out").arg(tmp("leak-bad")).args(["--threshold", "10", "--max-distance", "8"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("raise --max-distance"), "{}", text(&out));
    let out = bin().args(["leakage", "--data"]).arg(data.join("nowhere")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cannot open the dataset folder"), "{}", text(&out));
}

#[test]
fn evaluate_external_folder_reports_sensitivity_and_specificity() {
    let model = tmp("ext-model").join("tiny.onnx");
    let out = bin().args(["random-model", "--arch", "tiny", "--size", "64", "--out"]).arg(&model).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Only two classes, and an empty one: an external set may lack classes.
    let data = tmp("ext-data");
    for i in 0..3 {
        put(&data, &format!("glioma/g{i}.png"), &image(100 + i));
    }
    for i in 0..2 {
        put(&data, &format!("notumor/n{i}.png"), &image(200 + i));
    }
    std::fs::create_dir_all(data.join("pituitary")).unwrap();

    // Without --external the folder is refused as a training set and the fix is named.
    let out = bin().args(["evaluate", "--model"]).arg(&model).arg("--data").arg(&data).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no folder for class 'meningioma'"), "{}", text(&out));

    let report = data.join("report.json");
    let out = bin().args(["evaluate", "--external", "--binary", "--model"]).arg(&model).arg("--data").arg(&data).arg("--json").arg(&report).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("n = 3 tumour images") && shown.contains("n = 2 notumor images"), "{shown}");
    assert!(shown.contains("sensitivity") && shown.contains("95 % Wilson CI"), "{shown}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["n"], 5);
    assert_eq!(json["binary"]["positives"], 3);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 5);
    assert!(images.iter().all(|i| i["near_copy_in_training"] == false), "no training images, so no copies");
    let first = &images[0];
    assert_eq!(first["file"], "glioma/g0.png");
    assert_eq!(first["class"], "glioma");
    assert!(first["probability"].as_f64().unwrap() > 0.0);
}
