//! `mriscreen synth` end to end, through the real binary: the Kaggle layout
//! and counts, byte-identical output for a seed (whatever the thread
//! count), the README and labels that say "synthetic", the output-folder
//! safety rules, and clear errors for missing or corrupt anatomy.
//!
//! Needs Colin27 from Debian's `mricron-data` (scripts/setup installs it);
//! without it these tests fail and say so rather than skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CH2: &str = "/usr/share/mricron/templates/ch2.nii.gz";
const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

fn require_colin27() {
    assert!(
        Path::new(CH2).is_file(),
        "the Colin27 template {CH2} is missing: install it with `apt-get install mricron-data` (or run scripts/setup)"
    );
}

/// A fresh, empty path under the system temp dir.
fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-synth-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn synth(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mriscreen")).arg("synth").args(args).output().expect("run mriscreen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "mriscreen panicked:\n{stderr}");
    out
}

fn ok(args: &[&str]) -> Output {
    let out = synth(args);
    assert!(out.status.success(), "mriscreen synth {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every file under `dir` (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn writes_the_kaggle_layout_with_counts_readme_and_contact_sheets() {
    require_colin27();
    let dir = temp("layout");
    let d = dir.to_str().unwrap();
    // 4 × (40 + 10) = 200 small images: also the speed check of the brief.
    let started = std::time::Instant::now();
    ok(&["--out", d, "--count", "40", "--test-count", "10", "--size-range", "64..128", "--seed", "7"]);
    eprintln!("200 images at 64..128 px: {:.1} s", started.elapsed().as_secs_f32());
    for (split, n) in [("Training", 40), ("Testing", 10)] {
        for class in CLASSES {
            let folder = dir.join(split).join(class);
            let mut names: Vec<String> =
                std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
            names.sort();
            assert_eq!(names.len(), n, "{}", folder.display());
            assert_eq!(names[0], format!("synth_{class}_000000.jpg"));
            for name in names.iter().step_by(7) {
                let bytes = std::fs::read(folder.join(name)).unwrap();
                let text = String::from_utf8_lossy(&bytes[..200.min(bytes.len())]).to_string();
                assert!(text.contains("SYNTHETIC"), "{name}: no JPEG comment saying synthetic");
                let img = image::load_from_memory(&bytes).unwrap();
                assert_eq!(img.color(), image::ColorType::L8, "{name} should be greyscale");
                assert_eq!(img.width(), img.height());
                assert!((64..=128).contains(&img.width()), "{name}: {}", img.width());
            }
        }
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.starts_with("# SynthTumor — synthetic data, not real patients"), "{readme}");
    assert!(readme.contains("| seed | 7 |") && readme.contains("synthtumor-"), "{readme}");
    assert!(readme.contains("ch2.nii.gz") && readme.contains("ch2bet.nii.gz"), "{readme}");
    let sha = readme.split('`').any(|t| t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(sha, "README lists no SHA-256:\n{readme}");
    assert!(readme.contains("| Training | 40 | 40 | 40 | 40 | 160 |"), "{readme}");
    assert!(readme.contains("| Testing | 10 | 10 | 10 | 10 | 40 |"), "{readme}");
    for class in CLASSES {
        let sheet = image::open(dir.join(format!("contact_sheet_synth_{class}.png"))).unwrap();
        assert!(sheet.width() > 400 && sheet.height() > 400);
    }
    let csv = std::fs::read_to_string(dir.join("synth_metadata.csv")).unwrap();
    assert_eq!(csv.lines().count(), 201);
    // Pituitary images are all sellar planes; notumor shares them.
    let sellar = |class: &str| csv.lines().filter(|l| l.contains(&format!(",{class},")) && l.contains(",true,")).count();
    assert_eq!(sellar("pituitary"), 50);
    assert!(sellar("notumor") > 10 && sellar("notumor") < 40, "{}", sellar("notumor"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_gives_identical_bytes_whatever_the_threads_and_another_seed_differs() {
    require_colin27();
    let (a, b, c) = (temp("det-a"), temp("det-b"), temp("det-c"));
    let common = ["--count", "6", "--test-count", "2", "--size-range", "64..96"];
    let run = |dir: &Path, seed: &str, threads: &str| {
        let mut args = vec!["--out", dir.to_str().unwrap(), "--seed", seed, "--threads", threads];
        args.extend(common);
        ok(&args);
        files(dir)
    };
    let (fa, fb, fc) = (run(&a, "3", "1"), run(&b, "3", "2"), run(&c, "4", "2"));
    assert_eq!(fa.len(), 4 * 8 + 4 + 2);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{} differs between two runs with the same seed", k.display());
    }
    let jpgs = fa.keys().filter(|k| k.extension().is_some_and(|e| e == "jpg"));
    let same = jpgs.clone().filter(|k| fa[*k] == fc[*k]).count();
    assert_eq!(same, 0, "{same} of {} images equal under another seed", jpgs.count());
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn refuses_a_non_empty_folder_without_force_and_deletes_only_its_own_files() {
    require_colin27();
    let dir = temp("force");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let d = dir.to_str().unwrap();
    let small = ["--count", "2", "--test-count", "1", "--size-range", "48..48"];
    let args = |extra: &[&'static str]| [&["--out", d][..], &small[..], extra].concat();

    let out = synth(&args(&[]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    // --force will not clear a folder SynthTumor did not make.
    let out = synth(&args(&["--force"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a SynthTumor folder"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");

    // A SynthTumor folder is replaced with --force; other files stay.
    std::fs::remove_file(dir.join("keep.txt")).unwrap();
    ok(&args(&[]));
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let out = synth(&args(&[]));
    assert!(!out.status.success() && stderr(&out).contains("--force"));
    ok(&args(&["--seed", "1", "--force"]));
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(dir.join("Training/glioma")).unwrap().count(), 2);

    // …but not when a class folder holds a file it did not write.
    std::fs::write(dir.join("Training/glioma/real_patient.jpg"), "x").unwrap();
    let out = synth(&args(&["--force"]));
    assert!(!out.status.success() && stderr(&out).contains("real_patient.jpg"), "{}", stderr(&out));
    assert!(dir.join("Training/glioma/real_patient.jpg").exists());
    assert!(dir.join("Training/glioma/synth_glioma_000000.jpg").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_anatomy_gives_a_helpful_error() {
    let dir = temp("missing");
    let d = dir.to_str().unwrap();
    let out = synth(&["--out", d, "--count", "1", "--anatomy", "/nonexistent/brain.nii.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains("/nonexistent/brain.nii.gz") && e.contains("does not exist"), "{e}");
    // No Colin27 and no --anatomy: say how to install it.
    let out = synth(&["--out", d, "--count", "1", "--mricron-dir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("apt-get install mricron-data"), "{}", stderr(&out));
    assert!(!dir.exists(), "nothing should be written when the anatomy is missing");
}

#[test]
fn corrupt_nifti_is_an_error_not_a_panic() {
    require_colin27();
    let dir = temp("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    let out_dir = dir.join("out");
    // Valid gzip around garbage, a broken gzip stream, and a truncated header.
    let garbage = dir.join("garbage.nii.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&garbage).unwrap(), flate2::Compression::fast());
        e.write_all(&[0x42; 5000]).unwrap();
        e.finish().unwrap();
    }
    let broken = dir.join("broken.nii.gz");
    let mut bytes = std::fs::read(CH2).unwrap();
    bytes.truncate(100_000);
    std::fs::write(&broken, &bytes).unwrap();
    let short = dir.join("short.nii");
    std::fs::write(&short, [92u8, 1, 0, 0, 0, 0]).unwrap();
    for (file, want) in [(&garbage, Some("not a NIfTI-1 file")), (&broken, None), (&short, Some("truncated"))] {
        let out = synth(&["--out", out_dir.to_str().unwrap(), "--count", "1", "--anatomy", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let e = stderr(&out);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(e.contains(name), "{e}");
        if let Some(want) = want {
            assert!(e.contains(want), "{e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
