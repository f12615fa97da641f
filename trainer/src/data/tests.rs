//! End-to-end tests of the dataset layer on generated fixture folders in the
//! system temp directory: layouts, errors, corrupt files, splits, leakage,
//! dedup, report and batches.

use super::augment::AugmentConfig;
use super::*;
use image::codecs::jpeg::JpegEncoder;
use image::{GrayImage, Luma};
use mriscreen::rng::Rng;
use mriscreen::preprocess::{InputSpec, Intensity};

const BHUVAJI: [&str; 4] = ["glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"];
const NICKPARVAR: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

/// A smooth random grey image: six signed Gaussian blobs on mid-grey, from
/// a seed made of `name` (so every fixture file gets its own image, the same
/// on every run).
pub fn blobs(name: &str, w: u32, h: u32) -> GrayImage {
    // FNV-1a of the name.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut rng = Rng::new(seed);
    let b: Vec<[f32; 4]> = (0..6).map(|_| [rng.range(0.1, 0.9), rng.range(0.1, 0.9), rng.range(0.08, 0.25), rng.range(-0.5, 0.5)]).collect();
    GrayImage::from_fn(w, h, |x, y| {
        let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
        let s: f32 = b.iter().map(|[cx, cy, r, a]| a * (-((u - cx).powi(2) + (v - cy).powi(2)) / (2.0 * r * r)).exp()).sum();
        Luma([((0.5 + s).clamp(0.0, 1.0) * 255.0).round() as u8])
    })
}

pub fn png(img: &GrayImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encoding a PNG");
    out.into_inner()
}

pub fn jpeg(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode_image(img).expect("encoding a JPEG");
    out
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mriscreen-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a temp folder");
    d
}

pub fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("creating a folder");
    std::fs::write(path, bytes).expect("writing a fixture");
}

/// `n[k]` images in `root/<prefix><folders[k]>/`, alternately PNG and JPEG.
pub fn class_folders(root: &Path, prefix: &str, folders: &[&str], n: &[usize]) {
    for (folder, &count) in folders.iter().zip(n) {
        for i in 0..count {
            let img = blobs(&format!("{prefix}{folder}/{i}"), 48, 40);
            if i % 2 == 0 {
                write(root, &format!("{prefix}{folder}/img{i:03}.png"), &png(&img));
            } else {
                write(root, &format!("{prefix}{folder}/img{i:03}.JPG"), &jpeg(&img, 95));
            }
        }
    }
}

pub fn opts() -> DatasetOptions {
    DatasetOptions { progress: false, threads: 2, ..DatasetOptions::default() }
}

fn counts(ds: &Dataset, split: Split) -> Vec<usize> {
    ds.report.counts(split).map(|c| c.per_class.clone()).unwrap_or_default()
}

fn label_of(ds: &Dataset, file_part: &str) -> u32 {
    let s = ds.samples.iter().find(|s| s.path.to_string_lossy().contains(file_part));
    s.map(|s| s.label).unwrap_or(u32::MAX)
}

#[test]
fn bhuvaji_layout_maps_classes_and_uses_testing_as_test() {
    let root = tempdir("bhuvaji");
    class_folders(&root, "Training/", &BHUVAJI, &[8, 8, 8, 8]);
    class_folders(&root, "Testing/", &BHUVAJI, &[3, 3, 3, 3]);
    let ds = load_dataset(&root, &opts()).unwrap();
    assert_eq!(ds.report.layout, LayoutKind::TrainingTesting);
    assert!(ds.report.variant.contains("Bhuvaji"), "{}", ds.report.variant);
    assert_eq!(ds.classes, CLASSES);
    assert_eq!(counts(&ds, Split::Test), [3, 3, 3, 3]);
    assert_eq!(counts(&ds, Split::Val), [1, 1, 1, 1], "round(8 × 0.15) per class");
    assert_eq!(counts(&ds, Split::Train), [7, 7, 7, 7]);
    for (k, folder) in BHUVAJI.iter().enumerate() {
        assert_eq!(label_of(&ds, &format!("Training/{folder}/img000")), k as u32, "{folder}");
    }
    assert!(ds.test.iter().all(|&i| ds.samples[i].source == Source::Testing));
    assert!(ds.train.iter().chain(&ds.val).all(|&i| ds.samples[i].source == Source::Training));
}

#[test]
fn nickparvar_layout_with_mixed_extensions_hidden_and_other_files() {
    let root = tempdir("nickparvar");
    class_folders(&root, "Training/", &NICKPARVAR, &[6, 5, 7, 6]);
    class_folders(&root, "Testing/", &NICKPARVAR, &[2, 2, 2, 2]);
    write(&root, "Training/glioma/.DS_Store", b"junk");
    write(&root, "Training/glioma/._img000.png", b"resource fork");
    write(&root, "Training/notumor/readme.txt", b"notes");
    write(&root, "LICENSE", b"CC0");
    let ds = load_dataset(&root, &opts()).unwrap();
    assert!(ds.report.variant.contains("Nickparvar"), "{}", ds.report.variant);
    assert_eq!(ds.report.files_found, 24 + 8);
    assert_eq!(ds.report.images_loaded, 32);
    assert_eq!(ds.report.ignored_files, 1, "the .txt; hidden files are not even counted");
    assert_eq!(label_of(&ds, "notumor/img001.JPG"), 2);
    assert_eq!(label_of(&ds, "pituitary/img002.png"), 3);
    // Training/ then Testing/, each in sorted path order: deterministic.
    for source in [Source::Training, Source::Testing] {
        let paths: Vec<&PathBuf> = ds.samples.iter().filter(|s| s.source == source).map(|s| &s.path).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }
    assert_eq!(ds.samples.iter().position(|s| s.source == Source::Testing), Some(24));
}

#[test]
fn plain_layout_gets_a_stratified_70_15_15_split() {
    let root = tempdir("plain");
    let n = [20, 40, 14, 27];
    class_folders(&root, "", &["Glioma", "meningioma_tumour", "healthy", "pituitary_adenoma"], &n);
    let ds = load_dataset(&root, &opts()).unwrap();
    assert_eq!(ds.report.layout, LayoutKind::ClassFolders);
    for (k, &total) in n.iter().enumerate() {
        let part = (total as f64 * 0.15).round() as usize;
        assert_eq!(counts(&ds, Split::Val)[k], part, "class {k}");
        assert_eq!(counts(&ds, Split::Test)[k], part, "class {k}");
        assert_eq!(counts(&ds, Split::Train)[k], total - 2 * part, "class {k}");
    }
    let mut all: Vec<usize> = [&ds.train[..], &ds.val, &ds.test].concat();
    all.sort_unstable();
    assert_eq!(all, (0..ds.samples.len()).collect::<Vec<_>>(), "a partition");
    assert_eq!(ds.class_counts(Split::Train), counts(&ds, Split::Train));
}

#[test]
fn val_split_is_stratified_and_seed_deterministic() {
    let root = tempdir("seeded");
    class_folders(&root, "Training/", &NICKPARVAR, &[14, 20, 7, 10]);
    class_folders(&root, "Testing/", &NICKPARVAR, &[1, 1, 1, 1]);
    let paths = |ds: &Dataset| -> Vec<PathBuf> { ds.val.iter().map(|&i| ds.samples[i].path.clone()).collect() };
    let a = load_dataset(&root, &opts()).unwrap();
    let b = load_dataset(&root, &opts()).unwrap();
    let c = load_dataset(&root, &DatasetOptions { seed: 7, ..opts() }).unwrap();
    assert_eq!(paths(&a), paths(&b));
    assert_ne!(paths(&a), paths(&c));
    assert_eq!(counts(&a, Split::Val), [2, 3, 1, 2]);
    assert_eq!(counts(&c, Split::Val), [2, 3, 1, 2]);
}

#[test]
fn corrupt_files_are_skipped_and_reported_not_fatal() {
    let root = tempdir("corrupt");
    class_folders(&root, "", &NICKPARVAR, &[4, 4, 4, 4]);
    let whole = jpeg(&blobs("truncated", 48, 48), 90);
    write(&root, "glioma/truncated.jpg", &whole[..whole.len() / 2]);
    write(&root, "meningioma/notes.png", b"this is a text file, not a PNG\n");
    write(&root, "notumor/empty.png", b"");
    let ds = load_dataset(&root, &opts()).unwrap();
    assert_eq!(ds.report.images_loaded, 16);
    let skipped: Vec<(&str, &str)> = ds.report.skipped.iter().map(|s| (s.path.as_str(), s.reason.as_str())).collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped.iter().any(|(p, r)| *p == "glioma/truncated.jpg" && r.contains("truncated")), "{skipped:?}");
    assert!(skipped.iter().any(|(p, r)| *p == "meningioma/notes.png" && r.contains("text file")), "{skipped:?}");
    assert!(skipped.iter().any(|(p, r)| *p == "notumor/empty.png" && r.contains("empty")), "{skipped:?}");
    assert!(ds.report.summary().contains("3 unreadable skipped"));
}

#[test]
fn empty_dataset_folder_is_an_error() {
    let root = tempdir("empty");
    let err = load_dataset(&root, &opts()).unwrap_err().to_string();
    assert!(err.contains("is empty") && err.contains(&root.display().to_string()), "{err}");
    let err = load_dataset(&root.join("missing"), &opts()).unwrap_err();
    assert!(format!("{err:#}").contains("cannot open the dataset folder"), "{err:#}");
}

#[test]
fn class_folder_without_images_is_an_error_naming_it() {
    let root = tempdir("noimages");
    class_folders(&root, "", &["glioma", "meningioma", "pituitary"], &[2, 2, 2]);
    write(&root, "notumor/readme.txt", b"no images here");
    let err = load_dataset(&root, &opts()).unwrap_err().to_string();
    assert!(err.contains("has no images") && err.contains("notumor"), "{err}");
}

#[test]
fn unknown_class_folder_lists_accepted_aliases_or_is_skipped_on_request() {
    let root = tempdir("unknown");
    class_folders(&root, "", &NICKPARVAR, &[2, 2, 2, 2]);
    class_folders(&root, "", &["yes", "astrocytoma"], &[1, 1]);
    let err = load_dataset(&root, &opts()).unwrap_err().to_string();
    assert!(err.contains("'astrocytoma', 'yes'"), "{err}");
    assert!(err.contains("pituitary_adenoma") && err.contains("healthy") && err.contains("no_tumor"), "{err}");
    let ds = load_dataset(&root, &DatasetOptions { skip_unknown_folders: true, ..opts() }).unwrap();
    assert_eq!(ds.report.unknown_folders, ["astrocytoma", "yes"]);
    assert_eq!(ds.samples.len(), 8);
}

#[test]
fn missing_class_is_an_error() {
    let root = tempdir("missing_class");
    class_folders(&root, "", &["glioma", "meningioma", "notumor"], &[2, 2, 2]);
    let err = load_dataset(&root, &opts()).unwrap_err().to_string();
    assert!(err.contains("no folder for class 'pituitary'"), "{err}");
}

/// Training/ + Testing/ where Testing/ holds, besides its own images, an
/// exact copy (same pixels, other file), a re-encoded copy (PNG → BMP) and
/// a brightened JPEG copy of three training images.
fn leaky(name: &str) -> (PathBuf, [GrayImage; 3]) {
    let root = tempdir(name);
    class_folders(&root, "Training/", &NICKPARVAR, &[10, 10, 10, 10]);
    class_folders(&root, "Testing/", &NICKPARVAR, &[3, 3, 3, 3]);
    let originals = [blobs("orig_a", 64, 64), blobs("orig_b", 64, 64), blobs("orig_c", 64, 64)];
    write(&root, "Training/glioma/orig_a.png", &png(&originals[0]));
    write(&root, "Training/meningioma/orig_b.png", &png(&originals[1]));
    write(&root, "Training/notumor/orig_c.png", &png(&originals[2]));
    write(&root, "Testing/glioma/copy_a.png", &png(&originals[0]));
    let mut bmp = std::io::Cursor::new(Vec::new());
    originals[1].write_to(&mut bmp, image::ImageFormat::Bmp).unwrap();
    write(&root, "Testing/meningioma/copy_b.bmp", bmp.get_ref());
    let mut brighter = originals[2].clone();
    brighter.pixels_mut().for_each(|p| p[0] = p[0].saturating_add(3));
    write(&root, "Testing/notumor/copy_c.jpg", &jpeg(&brighter, 90));
    (root, originals)
}

fn index_of(ds: &Dataset, name: &str) -> usize {
    ds.samples.iter().position(|s| s.path.ends_with(name)).unwrap()
}

#[test]
fn exact_and_near_duplicates_across_splits_are_counted() {
    let (root, _) = leaky("leaky");
    let ds = load_dataset(&root, &opts()).unwrap();
    let l = &ds.report.leakage;
    // Where each original landed (train or val) decides which pair counts it.
    let in_val = |name: &str| ds.val.contains(&index_of(&ds, name));
    let (a, b, c) = (in_val("orig_a.png"), in_val("orig_b.png"), in_val("orig_c.png"));
    let exact_tt = usize::from(!a) + usize::from(!b);
    let exact_vt = usize::from(a) + usize::from(b);
    let tt = l.pair(Split::Train, Split::Test).unwrap();
    let vt = l.pair(Split::Val, Split::Test).unwrap();
    assert_eq!((tt.exact_pairs, vt.exact_pairs), (exact_tt, exact_vt), "{l:#?}");
    assert_eq!((tt.near_pairs, vt.near_pairs), (usize::from(!c), usize::from(c)), "{l:#?}");
    assert_eq!(l.pair(Split::Train, Split::Val).unwrap().exact_pairs, 0);
    let near = tt.examples.iter().chain(&vt.examples).find(|e| e.kind == "near").unwrap();
    assert_eq!((near.a.as_str(), near.b.as_str()), ("Training/notumor/orig_c.png", "Testing/notumor/copy_c.jpg"));
    assert!(near.distance <= 6);
    // Nothing else in the fixture is alike.
    assert_eq!(l.within.iter().map(|p| p.exact_pairs + p.near_pairs).sum::<usize>(), 0, "{l:#?}");
    assert!(ds.report.summary().contains("train–test"));
}

#[test]
fn dedup_drops_val_and_test_duplicates_of_training_images() {
    let (root, _) = leaky("dedup");
    // Find a seed that puts all three originals in train, so all three copies go.
    let ds = (0..50u64)
        .map(|seed| load_dataset(&root, &DatasetOptions { seed, dedup: true, ..opts() }).unwrap())
        .find(|ds| ["orig_a.png", "orig_b.png", "orig_c.png"].iter().all(|n| ds.train.contains(&index_of(ds, n))))
        .expect("some seed keeps the originals in train");
    let d = ds.report.dedup.as_ref().unwrap();
    let test_drops = d.dropped.iter().find(|c| c.split == Split::Test).unwrap();
    assert_eq!(test_drops.per_class, [1, 1, 1, 0]);
    assert_eq!(counts(&ds, Split::Test), [3, 3, 3, 3], "copies gone, originals' test images kept");
    for copy in ["copy_a.png", "copy_b.bmp", "copy_c.jpg"] {
        assert!(!ds.test.contains(&index_of(&ds, copy)), "{copy} dropped");
    }
    // The leakage section still reports what was found before dropping.
    assert_eq!(ds.report.leakage.pair(Split::Train, Split::Test).unwrap().images_with_duplicate, 3);
    assert!(ds.report.summary().contains("dedup: dropped 0 val and 3 test"), "{}", ds.report.summary());
    let json = serde_json::to_value(&ds.report).unwrap();
    assert_eq!(json["dedup"]["dropped"][1]["total"], 3);
    assert_eq!(json["layout"], "training-testing");
}

#[test]
fn grouped_split_keeps_test_copies_out_of_validation_and_counts_the_clean_subset() {
    let (root, _) = leaky("grouped");
    for seed in 0..20u64 {
        let ds = load_dataset(&root, &DatasetOptions { seed, ..opts() }).unwrap();
        for name in ["orig_a.png", "orig_b.png", "orig_c.png"] {
            assert!(ds.train.contains(&index_of(&ds, name)), "seed {seed}: {name} has a Testing/ copy, so it trains");
        }
        let clean = ds.without_training_copies(Split::Test);
        for copy in ["copy_a.png", "copy_b.bmp", "copy_c.jpg"] {
            assert!(!clean.contains(&index_of(&ds, copy)), "seed {seed}: {copy} is not in the deduplicated subset");
        }
        assert_eq!(clean.len(), 12, "the other test images stay");
        assert_eq!(ds.report.test_without_training_copy.as_ref().unwrap().per_class, [3, 3, 3, 3]);
        assert_eq!(ds.report.grouping.straddling, [0, 3, 0], "three clusters span train and test, none validation");
        assert!(ds.report.split_rule.contains("kept whole"), "{}", ds.report.split_rule);
    }
    // Ungrouped, some seed puts an original into validation, as before.
    let ungrouped = (0..50u64).map(|seed| load_dataset(&root, &DatasetOptions { seed, grouped: false, ..opts() }).unwrap());
    assert!(ungrouped.into_iter().any(|ds| ds.val.contains(&index_of(&ds, "orig_a.png"))));
}

#[test]
fn grouped_class_folders_never_split_a_cluster() {
    let root = tempdir("grouped-folders");
    class_folders(&root, "", &NICKPARVAR, &[20, 20, 20, 20]);
    // Five images, each with a brightened near copy in the same class.
    for i in 0..5 {
        let img = blobs(&format!("pair{i}"), 64, 64);
        let mut copy = img.clone();
        copy.pixels_mut().for_each(|p| p[0] = p[0].saturating_add(2));
        write(&root, &format!("glioma/pair{i}_a.png"), &png(&img));
        write(&root, &format!("glioma/pair{i}_b.jpg"), &jpeg(&copy, 92));
    }
    for seed in 0..10u64 {
        let ds = load_dataset(&root, &DatasetOptions { seed, ..opts() }).unwrap();
        assert_eq!(ds.report.grouping.clusters, 5);
        assert_eq!(ds.report.grouping.straddling, [0, 0, 0], "seed {seed}");
        for i in 0..5 {
            let (a, b) = (index_of(&ds, &format!("pair{i}_a.png")), index_of(&ds, &format!("pair{i}_b.jpg")));
            assert_eq!(ds.cluster[a], ds.cluster[b]);
            let split_of = |k| Split::ALL.into_iter().find(|s| ds.split(*s).contains(&k));
            assert_eq!(split_of(a), split_of(b), "seed {seed}: pair {i}");
        }
    }
}

#[test]
fn an_image_filed_under_two_labels_is_reported_and_dropped() {
    let root = tempdir("conflict");
    class_folders(&root, "Training/", &NICKPARVAR, &[8, 8, 8, 8]);
    class_folders(&root, "Testing/", &NICKPARVAR, &[2, 2, 2, 2]);
    let img = blobs("twice", 64, 64);
    write(&root, "Training/glioma/twice.png", &png(&img));
    write(&root, "Testing/notumor/twice_again.png", &png(&img));
    let ds = load_dataset(&root, &opts()).unwrap();
    let (a, b) = (index_of(&ds, "twice.png"), index_of(&ds, "twice_again.png"));
    for split in Split::ALL {
        assert!(!ds.split(split).contains(&a) && !ds.split(split).contains(&b), "{split:?}");
    }
    assert_eq!(ds.report.label_conflicts, [("Training/glioma/twice.png".to_string(), "Testing/notumor/twice_again.png".to_string())]);
    assert!(ds.report.summary().contains("2 images filed under two labels were dropped"), "{}", ds.report.summary());
}

#[test]
fn an_external_folder_is_all_test_and_may_lack_classes() {
    let root = tempdir("external");
    class_folders(&root, "", &["glioma", "notumor"], &[3, 4]);
    assert!(load_dataset(&root, &opts()).is_err(), "a training set needs every class");
    let ds = load_dataset(&root, &DatasetOptions { all_test: true, ..opts() }).unwrap();
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (0, 0, 7));
    assert_eq!(counts(&ds, Split::Test), [3, 0, 4, 0]);
    assert_eq!(ds.without_training_copies(Split::Test).len(), 7);
}

#[test]
fn a_folder_that_differs_from_its_manifest_warns_and_strict_refuses() {
    let root = tempdir("manifest");
    class_folders(&root, "Training/", &NICKPARVAR, &[6, 6, 6, 6]);
    class_folders(&root, "Testing/", &NICKPARVAR, &[2, 2, 2, 2]);
    // A file named as in Nickparvar's Testing/ but holding other bytes.
    write(&root, "Testing/glioma/Te-glTr_0000.jpg", &jpeg(&blobs("impostor", 64, 64), 90));
    let ds = load_dataset(&root, &opts()).unwrap();
    let m = ds.report.manifest.as_ref().expect("the name is in a known manifest");
    assert!(!m.matches);
    assert!(m.manifests.iter().any(|r| r.manifest == "nickparvar-testing.tsv" && r.differ == ["Testing/glioma/Te-glTr_0000.jpg"]), "{m:?}");
    let err = load_dataset(&root, &DatasetOptions { strict: true, ..opts() }).unwrap_err().to_string();
    assert!(err.contains("does not match the dataset manifest") && err.contains("scripts/fetch-data"), "{err}");
    assert!(err.contains("1 files differ"), "{err}");
}

#[test]
fn fixture_images_are_far_apart_in_phash() {
    let hashes: Vec<u64> = (0..40).map(|i| dedup::phash(&blobs(&format!("far{i}"), 64, 64).into())).collect();
    let min = (0..40).flat_map(|i| (i + 1..40).map(move |j| (i, j))).map(|(i, j)| dedup::hamming(hashes[i], hashes[j])).min();
    assert!(min.unwrap() > 6, "closest pair {min:?}");
}

#[test]
fn batches_are_preprocessed_labelled_and_thread_independent() {
    let root = tempdir("batches");
    class_folders(&root, "", &NICKPARVAR, &[8, 8, 8, 8]);
    let mut ds = load_dataset(&root, &opts()).unwrap();
    let spec = InputSpec { width: 32, height: 24, intensity: Intensity::Robust, ..InputSpec::default() };
    let order = ds.epoch_order(Split::Train, 3);
    assert_eq!(order, ds.epoch_order(Split::Train, 3));
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..ds.train.len()).collect::<Vec<_>>());

    let idx = &order[..5];
    let (xs, ys) = ds.batch(Split::Train, idx, &spec, None);
    assert_eq!(xs.len(), 5 * 3 * 24 * 32);
    assert_eq!(ys, idx.iter().map(|&i| ds.samples[ds.train[i]].label).collect::<Vec<_>>());
    let first = mriscreen::preprocess::preprocess(&ds.samples[ds.train[idx[0]]].image, &spec);
    assert_eq!(&xs[..spec.len()], &first[..], "the shared preprocess, unchanged");

    let cfg = AugmentConfig::default();
    let two = ds.batch(Split::Train, idx, &spec, Some((&cfg, 9)));
    ds.threads = 1;
    let one = ds.batch(Split::Train, idx, &spec, Some((&cfg, 9)));
    assert_eq!(one, two, "same result on 1 and 2 threads");
    assert_ne!(one.0, xs, "augmentation changed the images");
    // An image's augmentation does not depend on its batch.
    let alone = ds.batch(Split::Train, &idx[2..3], &spec, Some((&cfg, 9)));
    assert_eq!(&alone.0[..], &one.0[2 * spec.len()..3 * spec.len()]);
}

#[test]
fn every_view_of_a_batch_is_the_same_augmented_image() {
    let root = tempdir("views");
    class_folders(&root, "", &NICKPARVAR, &[6, 6, 6, 6]);
    let ds = load_dataset(&root, &opts()).unwrap();
    let small = InputSpec { width: 32, height: 24, intensity: Intensity::Robust, ..InputSpec::default() };
    let large = InputSpec { width: 64, height: 64, intensity: Intensity::Robust, ..InputSpec::default() };
    let idx = &ds.epoch_order(Split::Train, 5)[..4];
    let cfg = AugmentConfig::default();
    let (views, labels) = ds.batch_views(Split::Train, idx, &[&small, &large], Some((&cfg, 11)));
    assert_eq!(views.len(), 2);
    let (s, ls) = ds.batch(Split::Train, idx, &small, Some((&cfg, 11)));
    let (l, _) = ds.batch(Split::Train, idx, &large, Some((&cfg, 11)));
    assert_eq!((&views[0], &views[1], &labels), (&s, &l, &ls), "each view equals that spec's batch of the same augmentation");
    let (plain, _) = ds.batch(Split::Train, idx, &large, None);
    assert_ne!(views[1], plain, "the views are augmented");
}

/// Timing, not a test: `cargo test --release -p trainer --bin mriscreen
/// data::tests::time_2000_images -- --ignored --nocapture`. Loads a generated
/// Training/ + Testing/ fixture of 2,000 256-px JPEGs (100 test images are
/// brightened copies of training images) and prints the report's timings.
#[test]
#[ignore]
fn time_2000_images() {
    let root = std::env::temp_dir().join("mriscreen-data-time-2000");
    if !root.join("done").exists() {
        let _ = std::fs::remove_dir_all(&root);
        for (k, folder) in NICKPARVAR.iter().enumerate() {
            for i in 0..500 {
                let img = blobs(&format!("{folder}/{i}"), 256, 256);
                let part = if i < 425 { "Training" } else { "Testing" };
                write(&root, &format!("{part}/{folder}/{k}_{i:03}.jpg"), &jpeg(&img, 90));
                if i < 25 {
                    let mut copy = img.clone();
                    copy.pixels_mut().for_each(|p| p[0] = p[0].saturating_add(3));
                    write(&root, &format!("Testing/{folder}/copy_{i:03}.jpg"), &jpeg(&copy, 85));
                }
            }
        }
        write(&root, "done", b"");
    }
    for threads in [1, 2] {
        let start = std::time::Instant::now();
        let ds = load_dataset(&root, &DatasetOptions { threads, dedup: true, ..opts() }).unwrap();
        println!("threads {threads}: total {:.2} s, timings {:?}", start.elapsed().as_secs_f64(), ds.report.timings);
        if threads == 2 {
            println!("{}", ds.report.summary());
            for p in ds.report.leakage.between.iter().chain(&ds.report.leakage.within) {
                for e in &p.examples {
                    println!("  {}: {} ~ {} ({}, {} bits)", p.splits, e.a, e.b, e.kind, e.distance);
                }
            }
            let mut d: Vec<u32> = (0..500).flat_map(|i| (i + 1..500).map(move |j| (i, j)))
                .map(|(i, j)| dedup::hamming(ds.samples[i * 4].fingerprint.phash, ds.samples[j * 4].fingerprint.phash))
                .collect();
            d.sort_unstable();
            println!("pHash distances of 124,750 unrelated pairs: min {}, 0.1 % {}, 1 % {}, median {}", d[0], d[d.len() / 1000], d[d.len() / 100], d[d.len() / 2]);
            let fps: Vec<Fingerprint> = ds.samples.iter().map(|s| s.fingerprint.clone()).collect();
            let many: Vec<Fingerprint> = (0..4).flat_map(|_| fps.iter().cloned()).take(7000).collect();
            let start = std::time::Instant::now();
            let pairs = dedup::duplicate_pairs(&many, 6);
            println!("all-pairs pHash search over 7,000 hashes: {:.3} s ({} pairs)", start.elapsed().as_secs_f64(), pairs.len());
        }
    }
}
