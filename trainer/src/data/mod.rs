//! The trainer's dataset layer: class-per-folder MRI images in, decoded
//! images with train / validation / test splits and a report out.
//!
//! [`load_dataset`] runs the steps in order, one module each:
//! [`layout`] finds the class folders (both Kaggle layouts, or one folder per
//! class) and maps their names to the canonical classes; [`read`] decodes every
//! image once through the shared decoder, skipping unreadable files; [`split`]
//! makes stratified seeded splits; [`dedup`] finds exact and perceptual-hash
//! duplicates across the splits and optionally drops the leaking val/test
//! images; [`report`] records it all. The [`loader`] then builds batches
//! through the shared `preprocess`, with [`augment`] for training — so a model
//! is trained on exactly the numbers the page will feed it.

// used by `train` (next)

pub mod augment;
pub mod contact_sheet;
pub mod dedup;
pub mod layout;
pub mod loader;
pub mod manifest;
pub mod read;
pub mod report;
pub mod split;
#[cfg(test)]
mod tests;

use anyhow::{bail, Result};
use image::DynamicImage;
use mriscreen::decode::Limits;
use mriscreen::CLASSES;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use dedup::Fingerprint;
pub use layout::{LayoutKind, Source};
pub use report::{DatasetReport, DedupReport, LoadTimings, SkippedFile, SplitCounts};

/// The default near-duplicate threshold: largest pHash Hamming distance (of
/// 63 bits) at which two images count as copies of each other.
pub const NEAR_THRESHOLD: u32 = 6;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    #[cfg(test)]
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// How to load and split a dataset.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Seeds the splits (default 42).
    pub seed: u64,
    /// Share of each class held out for validation (default 0.15): from
    /// Training/ when there is a Testing/, else from all images.
    pub val_fraction: f64,
    /// Share of each class held out for testing when there is no Testing/
    /// (default 0.15, giving 70/15/15).
    pub test_fraction: f64,
    /// Largest pHash Hamming distance counted as a near duplicate (default 6).
    pub near_threshold: u32,
    /// Drop val and test images that duplicate (exactly or nearly) a training image.
    pub dedup: bool,
    /// Keep every near-duplicate cluster inside one split when splitting
    /// (default on; the given Training/ / Testing/ division is never changed).
    pub grouped: bool,
    /// Put every image in the test split (an external test set: no training,
    /// no validation, and classes may be missing).
    pub all_test: bool,
    /// Skip unrecognised class folders (and list them in the report) instead
    /// of refusing the dataset.
    pub skip_unknown_folders: bool,
    /// Size budgets per image, as in the page.
    pub limits: Limits,
    /// Threads for decoding and batch preprocessing (default: all cores).
    pub threads: usize,
    /// Show a progress bar while decoding.
    pub progress: bool,
    /// Refuse a folder whose files differ from a known manifest they partly match.
    pub strict: bool,
}

/// The flags that rebuild a training run's splits, for the subcommands that
/// read a dataset after `train` (`evaluate`, `calibrate`): the same values
/// give the same validation and test images.
#[derive(clap::Args, Debug, Clone)]
pub struct SplitArgs {
    /// Dataset folder (Kaggle layout or one folder per class).
    #[arg(long)]
    pub data: PathBuf,
    /// Split seed, as given to `train`.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of each class held out for validation, as given to `train`.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// As given to `train`: drop validation/test images that duplicate training images.
    #[arg(long)]
    pub dedup: bool,
    /// As given to `train`: the near-duplicate threshold (pHash bits).
    #[arg(long, default_value_t = NEAR_THRESHOLD)]
    pub near_threshold: u32,
    /// As given to `train`: split without keeping near-duplicate clusters together.
    #[arg(long)]
    pub ungrouped: bool,
    /// Refuse a dataset folder that does not match the known manifest it resembles.
    #[arg(long)]
    pub strict: bool,
}

impl SplitArgs {
    pub fn options(&self) -> DatasetOptions {
        DatasetOptions {
            seed: self.seed,
            val_fraction: self.val_fraction,
            dedup: self.dedup,
            near_threshold: self.near_threshold,
            grouped: !self.ungrouped,
            strict: self.strict,
            ..Default::default()
        }
    }

    pub fn load(&self) -> Result<Dataset> {
        load_dataset(&self.data, &self.options())
    }
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            seed: 42,
            val_fraction: 0.15,
            test_fraction: 0.15,
            near_threshold: NEAR_THRESHOLD,
            dedup: false,
            grouped: true,
            all_test: false,
            skip_unknown_folders: false,
            limits: Limits::default(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            progress: true,
            strict: false,
        }
    }
}

/// One decoded image.
#[derive(Debug, Clone)]
pub struct Sample {
    pub path: PathBuf,
    /// Index into [`CLASSES`].
    pub label: u32,
    pub source: Source,
    /// As decoded (8-bit grey when an RGB file held only grey pixels).
    pub image: DynamicImage,
    pub fingerprint: Fingerprint,
}

/// A loaded dataset: every readable image in memory, and the splits as
/// indices into `samples`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    /// Canonical class names; labels index this.
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    /// Near-duplicate cluster of each sample (the smallest sample index in it).
    pub cluster: Vec<usize>,
    pub report: DatasetReport,
    /// Threads for batch preprocessing.
    pub threads: usize,
}

impl Dataset {
    /// Sample indices of `split`, ascending.
    pub fn split(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// Labels of `split`, in split order.
    pub fn labels(&self, split: Split) -> Vec<u32> {
        self.split(split).iter().map(|&i| self.samples[i].label).collect()
    }

    /// The images of `split` whose near-duplicate cluster holds no training
    /// image: the deduplicated subset, on which an accuracy measures
    /// generalisation rather than recall of training images.
    pub fn without_training_copies(&self, split: Split) -> Vec<usize> {
        let trained: std::collections::HashSet<usize> = self.train.iter().map(|&i| self.cluster[i]).collect();
        self.split(split).iter().copied().filter(|&i| !trained.contains(&self.cluster[i])).collect()
    }

    /// Images per class in `split`.
    pub fn class_counts(&self, split: Split) -> Vec<usize> {
        SplitCounts::new(split, self.labels(split), self.classes.len()).per_class
    }
}

/// Loads the dataset under `dir`: finds the layout, compares it with the
/// known manifests, decodes every image once (skipping unreadable files),
/// finds duplicates, drops images that appear under two labels, splits
/// (keeping near-duplicate clusters together unless `opts.grouped` is off),
/// checks for leakage and, with `opts.dedup`, drops leaking val/test images.
/// Errors name the folder and say what to change.
pub fn load_dataset(dir: &Path, opts: &DatasetOptions) -> Result<Dataset> {
    let (v, t) = (opts.val_fraction, opts.test_fraction);
    if !(0.0..1.0).contains(&v) || !(0.0..1.0).contains(&t) || v + t >= 1.0 {
        bail!("val_fraction ({v}) and test_fraction ({t}) must each be in [0, 1) and leave images for training");
    }
    if opts.near_threshold > 32 {
        bail!("a near-duplicate threshold of {} bits (of 63) would call unrelated images copies; use at most 32", opts.near_threshold);
    }
    let start = Instant::now();
    let scan = layout::scan(dir, opts.skip_unknown_folders, !opts.all_test)?;
    let manifest = manifest::check_folder(dir, &scan.files);
    if let Some(m) = manifest.as_ref().filter(|m| !m.matches) {
        if opts.strict {
            bail!("{} does not match the dataset manifest it resembles ({}):\n{}\nfetch it again with scripts/fetch-data, or drop --strict", dir.display(), m.summary(), m.problems());
        }
        eprintln!("warning: {} differs from the known manifest: {}", dir.display(), m.summary());
    }
    let paths: Vec<PathBuf> = scan.files.iter().map(|f| f.path.clone()).collect();
    let results = read::read_all(&paths, &opts.limits, opts.threads, opts.progress);

    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (file, result) in scan.files.iter().zip(results) {
        match result {
            Ok(l) => samples.push(Sample {
                path: file.path.clone(),
                label: file.label,
                source: file.source,
                image: l.image,
                fingerprint: l.fingerprint,
            }),
            Err(reason) => skipped.push(SkippedFile { path: layout::relative(dir, &file.path), reason }),
        }
    }
    if samples.is_empty() {
        let first = skipped.first().map(|s| format!("; the first, {}: {}", s.path, s.reason)).unwrap_or_default();
        bail!("none of the {} image files in {} could be read{first}", scan.files.len(), dir.display());
    }
    for (class, name) in CLASSES.iter().enumerate() {
        let any = samples.iter().any(|s| s.label as usize == class && s.source != Source::Testing);
        if !any && !opts.all_test {
            let reasons: Vec<String> = scan
                .files
                .iter()
                .filter(|f| f.label as usize == class)
                .filter_map(|f| skipped.iter().find(|s| s.path == layout::relative(dir, &f.path)))
                .take(3)
                .map(|s| format!("  {}: {}", s.path, s.reason))
                .collect();
            if reasons.is_empty() {
                bail!("{} has no training images of class '{name}'; add a folder for it ({})", dir.display(), layout::accepted_names());
            }
            bail!("no readable training image of class '{name}' in {}; every file was refused:\n{}", dir.display(), reasons.join("\n"));
        }
    }
    let read_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let names: Vec<String> = samples.iter().map(|s| layout::relative(dir, &s.path)).collect();
    let fingerprints: Vec<Fingerprint> = samples.iter().map(|s| s.fingerprint.clone()).collect();
    let pairs = dedup::duplicate_pairs(&fingerprints, opts.near_threshold);
    let conflicts = dedup::label_conflicts(&pairs, &samples.iter().map(|s| s.label).collect::<Vec<_>>());
    let cluster = dedup::clusters(samples.len(), &pairs);
    let (mut train, mut val, mut test, split_rule) = make_splits(&samples, scan.kind, opts, &cluster);
    for part in [&mut train, &mut val, &mut test] {
        part.retain(|i| conflicts.images.binary_search(i).is_err());
    }
    let split_of = split_index(samples.len(), &train, &val, &test);
    let leakage = dedup::leakage(&pairs, &split_of, &names, opts.near_threshold);
    let grouping = dedup::GroupReport::new(&cluster, &split_of, opts.grouped);

    let dedup_report = opts.dedup.then(|| {
        let drop = dedup::duplicates_of_train(&pairs, &split_of);
        let dropped: Vec<SplitCounts> = [Split::Val, Split::Test]
            .into_iter()
            .map(|s| SplitCounts::new(s, drop.iter().filter(|&&i| split_of[i] == Some(s)).map(|&i| samples[i].label), CLASSES.len()))
            .collect();
        val.retain(|i| drop.binary_search(i).is_err());
        test.retain(|i| drop.binary_search(i).is_err());
        DedupReport {
            rule: "val and test images with an exact or near duplicate in train are dropped".into(),
            dropped,
            examples: drop.iter().take(5).map(|&i| names[i].clone()).collect(),
        }
    });

    let counts = [(Split::Train, &train), (Split::Val, &val), (Split::Test, &test)]
        .into_iter()
        .map(|(s, ids)| SplitCounts::new(s, ids.iter().map(|&i| samples[i].label), CLASSES.len()))
        .collect();
    let mut ds = Dataset {
        root: dir.to_path_buf(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        samples,
        train,
        val,
        test,
        cluster,
        report: DatasetReport {
            root: dir.display().to_string(),
            layout: scan.kind,
            variant: scan.variant,
            classes: CLASSES.iter().map(|c| c.to_string()).collect(),
            folders: scan.folders,
            split_rule,
            seed: opts.seed,
            counts,
            test_without_training_copy: None,
            files_found: scan.files.len(),
            images_loaded: 0,
            skipped,
            ignored_files: scan.ignored_files.len(),
            ignored_examples: scan.ignored_files.iter().take(5).map(|p| layout::relative(dir, p)).collect(),
            ignored_folders: scan.ignored_folders.iter().map(|p| layout::relative(dir, p)).collect(),
            unknown_folders: scan.unknown_folders.iter().map(|p| layout::relative(dir, p)).collect(),
            manifest,
            label_conflicts: conflicts.pairs.iter().map(|&(a, b)| (names[a].clone(), names[b].clone())).collect(),
            grouping,
            leakage,
            dedup: dedup_report,
            memory_bytes: 0,
            timings: LoadTimings { read_s, leakage_s: start.elapsed().as_secs_f64() },
        },
        threads: opts.threads.max(1),
    };
    ds.report.images_loaded = ds.samples.len();
    ds.report.memory_bytes = ds.samples.iter().map(|s| read::image_bytes(&s.image)).sum();
    let clean = ds.without_training_copies(Split::Test);
    ds.report.test_without_training_copy = Some(SplitCounts::new(Split::Test, clean.iter().map(|&i| ds.samples[i].label), CLASSES.len()));
    Ok(ds)
}

/// Train, val, test (sample indices, ascending) and the rule in words.
/// `cluster[i]` is sample i's near-duplicate cluster, kept in one split
/// when `opts.grouped`.
fn make_splits(samples: &[Sample], kind: LayoutKind, opts: &DatasetOptions, cluster: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>, String) {
    let pct = |f: f64| format!("{:.0} %", f * 100.0);
    let items = |source: Source| -> Vec<(usize, u32)> {
        samples.iter().enumerate().filter(|(_, s)| s.source == source).map(|(i, s)| (i, s.label)).collect()
    };
    let split = |items: &[(usize, u32)], fractions: &[f64]| {
        if opts.grouped {
            split::stratified_grouped(items, cluster, CLASSES.len(), fractions, opts.seed)
        } else {
            split::stratified(items, CLASSES.len(), fractions, opts.seed)
        }
    };
    let grouped = if opts.grouped {
        format!(", near-duplicate clusters (pHash ≤ {}) kept whole", opts.near_threshold)
    } else {
        String::new()
    };
    if opts.all_test {
        let all = (0..samples.len()).collect();
        return (vec![], vec![], all, "every image is a test image (an external test set)".into());
    }
    match kind {
        LayoutKind::TrainingTesting => {
            let test: Vec<usize> = items(Source::Testing).into_iter().map(|(i, _)| i).collect();
            // Grouped: a Training/ image in a cluster with a Testing/ image
            // never validates (it stays in train, where the deduplicated test
            // subset accounts for it), so validation holds no test copies.
            let tested: std::collections::HashSet<usize> = test.iter().map(|&i| cluster[i]).collect();
            let (pinned, free): (Vec<(usize, u32)>, Vec<(usize, u32)>) =
                items(Source::Training).into_iter().partition(|(i, _)| opts.grouped && tested.contains(&cluster[*i]));
            let mut parts = split(&free, &[opts.val_fraction]);
            let val = parts.pop().unwrap_or_default();
            let mut train = parts.pop().unwrap_or_default();
            train.extend(pinned.iter().map(|(i, _)| *i));
            train.sort_unstable();
            let rule = format!(
                "Testing/ is the test split; validation is {} of Training/ per class (stratified{grouped}, seed {}){}",
                pct(opts.val_fraction),
                opts.seed,
                if opts.grouped { "; Training/ images with a near copy in Testing/ stay in train" } else { "" }
            );
            (train, val, test, rule)
        }
        LayoutKind::ClassFolders => {
            let fractions = [opts.val_fraction, opts.test_fraction];
            let mut parts = split(&items(Source::Folder), &fractions);
            let test = parts.pop().unwrap_or_default();
            let val = parts.pop().unwrap_or_default();
            let train = parts.pop().unwrap_or_default();
            let rule = format!(
                "stratified by class{grouped}: {} train, {} validation, {} test (seed {})",
                pct(1.0 - opts.val_fraction - opts.test_fraction),
                pct(opts.val_fraction),
                pct(opts.test_fraction),
                opts.seed
            );
            (train, val, test, rule)
        }
    }
}

/// The split of each sample (None for samples in no split).
fn split_index(n: usize, train: &[usize], val: &[usize], test: &[usize]) -> Vec<Option<Split>> {
    let mut of = vec![None; n];
    for (split, ids) in [(Split::Train, train), (Split::Val, val), (Split::Test, test)] {
        for &i in ids {
            of[i] = Some(split);
        }
    }
    of
}
