//! The dataset report: what was found, what was skipped and why, the split
//! sizes per class, and the leakage check — serialisable to JSON for the run
//! record, with [`DatasetReport::summary`] as the one-screen version for the
//! terminal.

use super::dedup::{GroupReport, Leakage};
use super::manifest::Match;
use super::layout::{FolderReport, LayoutKind};
use super::Split;
use serde::Serialize;
use std::fmt::Write;

/// Everything `load_dataset` found and decided.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    pub root: String,
    pub layout: LayoutKind,
    /// The layout in words, naming the Kaggle dataset the folders look like.
    pub variant: String,
    /// Canonical class order: labels index this.
    pub classes: Vec<String>,
    pub folders: Vec<FolderReport>,
    /// How the splits were made, in words.
    pub split_rule: String,
    pub seed: u64,
    /// Images per split and class, after any dedup drops.
    pub counts: Vec<SplitCounts>,
    /// Test images whose near-duplicate cluster holds no training image (the
    /// deduplicated test subset), per class.
    pub test_without_training_copy: Option<SplitCounts>,
    /// Image files found (by extension).
    pub files_found: usize,
    /// Of those, decoded successfully.
    pub images_loaded: usize,
    /// Files the decoder refused, with its reason; not used.
    pub skipped: Vec<SkippedFile>,
    /// Files with extensions the decoder does not read.
    pub ignored_files: usize,
    pub ignored_examples: Vec<String>,
    /// Folders next to Training/ and Testing/.
    pub ignored_folders: Vec<String>,
    /// Unrecognised class folders (skipped only with `skip_unknown_folders`).
    pub unknown_folders: Vec<String>,
    /// How the folder compares with the known dataset manifests (None: it resembles none).
    pub manifest: Option<Match>,
    /// Exact copies filed under two labels (both dropped from every split).
    pub label_conflicts: Vec<(String, String)>,
    /// Near-duplicate clusters and how they sit in the splits.
    pub grouping: GroupReport,
    /// Duplicates between and within splits, before dedup.
    pub leakage: Leakage,
    /// Present when `dedup` was on.
    pub dedup: Option<DedupReport>,
    /// Bytes of decoded pixels held in memory.
    pub memory_bytes: u64,
    pub timings: LoadTimings,
}

/// Image counts of one split, per class in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    pub split: Split,
    pub per_class: Vec<usize>,
    pub total: usize,
}

impl SplitCounts {
    pub fn new(split: Split, labels: impl IntoIterator<Item = u32>, classes: usize) -> Self {
        let mut per_class = vec![0; classes];
        for l in labels {
            per_class[l as usize] += 1;
        }
        SplitCounts { split, total: per_class.iter().sum(), per_class }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

/// Validation and test images dropped for duplicating a training image.
#[derive(Debug, Clone, Serialize)]
pub struct DedupReport {
    pub rule: String,
    /// Per split (val, test) and class.
    pub dropped: Vec<SplitCounts>,
    /// A few dropped files.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadTimings {
    /// Scanning, reading, decoding and fingerprinting.
    pub read_s: f64,
    /// Pairwise hash comparison and report.
    pub leakage_s: f64,
}

impl DatasetReport {
    /// The counts of `split`.
    pub fn counts(&self, split: Split) -> Option<&SplitCounts> {
        self.counts.iter().find(|c| c.split == split)
    }

    /// A short human-readable table: classes × splits, skipped files,
    /// leakage and dedup.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "dataset  {}  ({})", self.root, self.variant);
        let _ = writeln!(s, "split    {}", self.split_rule);
        let _ = write!(s, "\n{:<12}", "class");
        for c in &self.counts {
            let _ = write!(s, "{:>8}", c.split.name());
        }
        let _ = writeln!(s);
        for (k, class) in self.classes.iter().enumerate() {
            let _ = write!(s, "{class:<12}");
            for c in &self.counts {
                let _ = write!(s, "{:>8}", c.per_class.get(k).copied().unwrap_or(0));
            }
            let _ = writeln!(s);
        }
        let _ = write!(s, "{:<12}", "total");
        for c in &self.counts {
            let _ = write!(s, "{:>8}", c.total);
        }
        let _ = writeln!(s, "\n");
        let _ = writeln!(
            s,
            "{} images loaded of {} found ({:.0} MiB in memory); {} unreadable skipped; {} non-image files ignored",
            self.images_loaded,
            self.files_found,
            self.memory_bytes as f64 / (1u64 << 20) as f64,
            self.skipped.len(),
            self.ignored_files
        );
        for f in self.skipped.iter().take(3) {
            let _ = writeln!(s, "  skipped {}: {}", f.path, f.reason);
        }
        if self.skipped.len() > 3 {
            let _ = writeln!(s, "  … and {} more (see the report)", self.skipped.len() - 3);
        }
        if let Some(m) = &self.manifest {
            let _ = writeln!(s, "manifest: {}{}", if m.matches { "matches " } else { "DIFFERS: " }, m.summary());
        }
        if !self.label_conflicts.is_empty() {
            let _ = writeln!(s, "{} images filed under two labels were dropped, e.g. {} and {}", self.label_conflicts.len() * 2,
                self.label_conflicts[0].0, self.label_conflicts[0].1);
        }
        if !self.unknown_folders.is_empty() {
            let _ = writeln!(s, "unknown class folders skipped: {}", self.unknown_folders.join(", "));
        }
        let _ = writeln!(
            s,
            "\nduplicates (near: pHash ≤ {} bits)   exact pairs  near pairs  images affected",
            self.leakage.near_threshold
        );
        for p in self.leakage.between.iter().chain(&self.leakage.within) {
            let label = if p.splits.contains('–') { p.splits.clone() } else { format!("within {}", p.splits) };
            let _ = writeln!(s, "  {label:<34}{:>11}{:>12}{:>17}", p.exact_pairs, p.near_pairs, p.images_with_duplicate);
        }
        let g = &self.grouping;
        let _ = writeln!(
            s,
            "  {} near-duplicate clusters ({} images, largest {}){}; clusters across train–val {}, train–test {}, val–test {}",
            g.clusters,
            g.images_in_clusters,
            g.largest,
            if g.grouped { ", kept whole by the split" } else { "" },
            g.straddling[0],
            g.straddling[1],
            g.straddling[2]
        );
        if let (Some(clean), Some(test)) = (&self.test_without_training_copy, self.counts(Split::Test)) {
            let _ = writeln!(s, "  deduplicated test subset (no near copy in train): {} of {} test images", clean.total, test.total);
        }
        let hist: Vec<String> = self.leakage.pairs_by_distance.iter().map(usize::to_string).collect();
        let _ = writeln!(s, "  pairs by pHash distance 0..={}: {}", self.leakage.near_threshold, hist.join(" "));
        match &self.dedup {
            Some(d) => {
                let dropped: Vec<String> = d.dropped.iter().map(|c| format!("{} {}", c.total, c.split.name())).collect();
                let _ = writeln!(s, "dedup: dropped {} images that duplicate a training image", dropped.join(" and "));
            }
            None => {
                let leaks = self.leakage.between.first().map_or(0, |p| p.images_with_duplicate);
                if leaks > 0 {
                    let _ = writeln!(s, "{leaks} validation images duplicate a training image: keep the split grouped, or pass --dedup");
                }
            }
        }
        s
    }
}
