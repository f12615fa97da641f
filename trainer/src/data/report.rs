//! The dataset report: what was found, what was skipped and why, the split
//! sizes per class, and the leakage check — serialisable to JSON for the run
//! record, with [`DatasetReport::summary`] as the one-screen version for the
//! terminal.

use super::dedup::Leakage;
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
        let hist: Vec<String> = self.leakage.pairs_by_distance.iter().map(usize::to_string).collect();
        let _ = writeln!(s, "  pairs by pHash distance 0..={}: {}", self.leakage.near_threshold, hist.join(" "));
        match &self.dedup {
            Some(d) => {
                let dropped: Vec<String> = d.dropped.iter().map(|c| format!("{} {}", c.total, c.split.name())).collect();
                let _ = writeln!(s, "dedup: dropped {} images that duplicate a training image", dropped.join(" and "));
            }
            None => {
                let leaks: usize = self.leakage.between.iter().take(2).map(|p| p.images_with_duplicate).sum();
                if leaks > 0 {
                    let _ = writeln!(s, "{leaks} val/test images duplicate a training image: consider dedup");
                }
            }
        }
        s
    }
}
