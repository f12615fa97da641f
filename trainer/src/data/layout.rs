//! Dataset folder layouts and class-name aliases.
//!
//! Finds the image files of a class-per-folder dataset and maps every folder
//! name to one of the canonical classes ([`CLASSES`]) through one alias table
//! ([`ALIASES`]). Two shapes are recognised:
//!
//! - **Training/ + Testing/**, as in both Kaggle brain-tumour datasets:
//!   Bhuvaji et al., "Brain Tumor Classification (MRI)" (3,264 images,
//!   folders `glioma_tumor`, `meningioma_tumor`, `no_tumor`, `pituitary_tumor`)
//!   and its 7,023-image successor by Nickparvar ("Brain Tumor MRI Dataset",
//!   folders `glioma`, `meningioma`, `notumor`, `pituitary`);
//! - **class folders**: `DIR/<class>/…` with no given split (also `DIR/Training/`
//!   alone).
//!
//! Names are matched case-insensitively, with `-` and spaces read as `_`.
//! Hidden files and folders (leading `.`) and `__MACOSX` are skipped; files
//! whose extension the shared decoder does not read are counted and ignored;
//! class folders are walked recursively and paths sorted, so the order is the
//! same on every machine.

use anyhow::{bail, Context, Result};
use mriscreen::CLASSES;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Accepted folder names per canonical class, in [`CLASSES`] order. Compared
/// after [`normalise`] (lower case, `-` and spaces as `_`).
pub const ALIASES: [(&str, &[&str]); 4] = [
    ("glioma", &["glioma", "gliomas", "glioma_tumor", "glioma_tumour", "glioma_tumors"]),
    ("meningioma", &["meningioma", "meningiomas", "meningioma_tumor", "meningioma_tumour", "meningioma_tumors"]),
    (
        "notumor",
        &["notumor", "notumour", "no_tumor", "no_tumour", "no", "none", "normal", "healthy", "negative", "no_tumors"],
    ),
    (
        "pituitary",
        &["pituitary", "pituitary_tumor", "pituitary_tumour", "pituitary_adenoma", "pituitary_adenomas", "pituitary_tumors"],
    ),
];

/// Extensions (lower case) of the formats `mriscreen::decode` reads.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

/// Which of the two shapes the dataset folder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutKind {
    /// `Training/` and `Testing/`, each with one folder per class.
    TrainingTesting,
    /// One folder per class, no split given.
    ClassFolders,
}

/// Where a file came from, which decides the split it can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Training,
    Testing,
    /// A class folder directly under the dataset folder.
    Folder,
}

/// An image file found in a class folder.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    pub path: PathBuf,
    pub label: u32,
    pub source: Source,
}

/// A class folder and the class it maps to.
#[derive(Debug, Clone, Serialize)]
pub struct FolderReport {
    /// Relative to the dataset folder.
    pub folder: String,
    pub class: String,
    /// Image files found (before decoding).
    pub files: usize,
}

/// Everything found in the dataset folder, before any image is decoded.
#[derive(Debug, Clone)]
pub struct Scan {
    pub kind: LayoutKind,
    /// Which known dataset the folder names look like, in words.
    pub variant: String,
    pub files: Vec<ScannedFile>,
    pub folders: Vec<FolderReport>,
    /// Files with extensions the decoder does not read.
    pub ignored_files: Vec<PathBuf>,
    /// Folders next to Training/ and Testing/ that are neither.
    pub ignored_folders: Vec<PathBuf>,
    /// Unrecognised class folders (only when they are skipped instead of refused).
    pub unknown_folders: Vec<PathBuf>,
}

/// Lower case, `-` and spaces as `_`, surrounding whitespace trimmed.
pub fn normalise(name: &str) -> String {
    name.trim().to_lowercase().replace(['-', ' '], "_")
}

/// The canonical class index for a folder name, if it is a known alias.
pub fn class_of(folder_name: &str) -> Option<u32> {
    let n = normalise(folder_name);
    let (class, _) = ALIASES.iter().find(|(_, names)| names.contains(&n.as_str()))?;
    CLASSES.iter().position(|c| c == class).map(|i| i as u32)
}

/// The alias table in words, for error messages.
pub fn accepted_names() -> String {
    let lines: Vec<String> = ALIASES.iter().map(|(class, names)| format!("  {class}: {}", names.join(", "))).collect();
    format!("accepted class folder names (case-insensitive; '-' or ' ' may stand for '_'):\n{}", lines.join("\n"))
}

/// Finds the layout, the class folders and their image files under `dir`.
/// With `skip_unknown`, unrecognised class folders are listed in
/// [`Scan::unknown_folders`] instead of being an error. With `every_class`
/// (a set to train on), each class needs a folder with images; without it (an
/// external test set) classes may be missing and class folders empty.
pub fn scan(dir: &Path, skip_unknown: bool, every_class: bool) -> Result<Scan> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot open the dataset folder {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is a file, not a dataset folder; pass the folder that holds the class folders (or Training/ and Testing/)", dir.display());
    }
    let (subdirs, files) = entries(dir)?;
    if subdirs.is_empty() {
        if files.is_empty() {
            bail!("the dataset folder {} is empty; it should hold Training/ and Testing/, or one folder per class", dir.display());
        }
        bail!(
            "the dataset folder {} has files but no class folders; put the images in one folder per class ({}), or in Training/<class>/ and Testing/<class>/",
            dir.display(),
            CLASSES.join(", ")
        );
    }
    let named = |names: &[&str]| subdirs.iter().find(|d| names.contains(&normalise(&file_name(d)).as_str())).cloned();
    let training = named(&["training", "train"]);
    let testing = named(&["testing", "test"]);

    let mut scan = Scan {
        kind: LayoutKind::ClassFolders,
        variant: String::new(),
        files: Vec::new(),
        folders: Vec::new(),
        ignored_files: Vec::new(),
        ignored_folders: Vec::new(),
        unknown_folders: Vec::new(),
    };
    match (training, testing) {
        (Some(train), Some(test)) => {
            scan.kind = LayoutKind::TrainingTesting;
            scan.ignored_folders = subdirs.iter().filter(|d| **d != train && **d != test).cloned().collect();
            scan_classes(dir, &train, Source::Training, skip_unknown, every_class, &mut scan)?;
            scan_classes(dir, &test, Source::Testing, skip_unknown, every_class, &mut scan)?;
            scan.variant = format!("Training/ + Testing/, {}", known_dataset(&scan.folders));
        }
        (None, Some(test)) => bail!(
            "{} has {} but no Training/ folder; add Training/<class>/ or pass a folder with one folder per class",
            dir.display(),
            file_name(&test)
        ),
        (Some(train), None) => {
            scan.ignored_folders = subdirs.iter().filter(|d| **d != train).cloned().collect();
            scan_classes(dir, &train, Source::Folder, skip_unknown, every_class, &mut scan)?;
            scan.variant = format!("Training/ only (no Testing/), {}", known_dataset(&scan.folders));
        }
        (None, None) => {
            scan_classes(dir, dir, Source::Folder, skip_unknown, every_class, &mut scan)?;
            scan.variant = format!("one folder per class, {}", known_dataset(&scan.folders));
        }
    }
    scan.ignored_files.sort();
    Ok(scan)
}

/// Scans the class folders under `root` into `scan`.
fn scan_classes(dataset: &Path, root: &Path, source: Source, skip_unknown: bool, every_class: bool, scan: &mut Scan) -> Result<()> {
    let (subdirs, _) = entries(root)?;
    let mut unknown = Vec::new();
    let mut mapped = Vec::new();
    for d in subdirs {
        match class_of(&file_name(&d)) {
            Some(label) => mapped.push((d, label)),
            None => unknown.push(d),
        }
    }
    if !unknown.is_empty() && !skip_unknown {
        let names: Vec<String> = unknown.iter().map(|d| format!("'{}'", file_name(d))).collect();
        bail!(
            "unknown class folder{} in {}: {}\n{}\n(rename the folders, or move folders that are not classes out of the dataset)",
            if unknown.len() > 1 { "s" } else { "" },
            root.display(),
            names.join(", "),
            accepted_names()
        );
    }
    scan.unknown_folders.extend(unknown);
    for (class, name) in CLASSES.iter().enumerate() {
        if every_class && !mapped.iter().any(|(_, l)| *l as usize == class) {
            bail!(
                "no folder for class '{name}' in {}; the model has the four classes {} and each needs a folder\n{}",
                root.display(),
                CLASSES.join(", "),
                accepted_names()
            );
        }
    }
    for (folder, label) in mapped {
        let mut images = Vec::new();
        walk(&folder, &mut images, &mut scan.ignored_files)?;
        if images.is_empty() && every_class {
            bail!(
                "the class folder {} has no images (looked for {} files)",
                folder.display(),
                IMAGE_EXTENSIONS.join(", ")
            );
        }
        images.sort();
        scan.folders.push(FolderReport {
            folder: relative(dataset, &folder),
            class: CLASSES[label as usize].to_string(),
            files: images.len(),
        });
        scan.files.extend(images.into_iter().map(|path| ScannedFile { path, label, source }));
    }
    Ok(())
}

/// Image files under `dir` (by extension, recursively, sorted) and the other files.
pub fn image_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut ignored) = (Vec::new(), Vec::new());
    walk(dir, &mut images, &mut ignored)?;
    Ok((images, ignored))
}

/// Image files under `dir`, recursively; other files go to `ignored`.
fn walk(dir: &Path, images: &mut Vec<PathBuf>, ignored: &mut Vec<PathBuf>) -> Result<()> {
    let (subdirs, files) = entries(dir)?;
    for f in files {
        if is_image(&f) {
            images.push(f);
        } else {
            ignored.push(f);
        }
    }
    for d in subdirs {
        walk(&d, images, ignored)?;
    }
    Ok(())
}

/// Visible subfolders and files of `dir`, each sorted.
fn entries(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    let read = std::fs::read_dir(dir).with_context(|| format!("cannot list the folder {}", dir.display()))?;
    for entry in read {
        let entry = entry.with_context(|| format!("cannot list the folder {}", dir.display()))?;
        let path = entry.path();
        let name = file_name(&path);
        if name.starts_with('.') || name == "__MACOSX" {
            continue;
        }
        // Follows symbolic links, so a dataset assembled from links works.
        if path.is_dir() {
            dirs.push(path);
        } else if path.is_file() {
            files.push(path);
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `path` relative to `root`, with `/` separators (the dataset folder itself is ".").
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Names the Kaggle dataset the class folder names match, if any.
fn known_dataset(folders: &[FolderReport]) -> String {
    let names: Vec<String> = folders.iter().map(|f| normalise(f.folder.rsplit('/').next().unwrap_or(""))).collect();
    let all_in = |set: &[&str]| names.iter().all(|n| set.contains(&n.as_str()));
    if all_in(&["glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"]) {
        "folder names of Bhuvaji et al., Kaggle \"Brain Tumor Classification (MRI)\" (3,264 images)".into()
    } else if all_in(&["glioma", "meningioma", "notumor", "pituitary"]) {
        "folder names of Nickparvar, Kaggle \"Brain Tumor MRI Dataset\" (7,023 images)".into()
    } else {
        "class names mapped through the alias table".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_canonical_order() {
        assert_eq!(class_of("glioma_tumor"), Some(0));
        assert_eq!(class_of("Meningioma"), Some(1));
        assert_eq!(class_of("No Tumor"), Some(2));
        assert_eq!(class_of("no-tumour"), Some(2));
        assert_eq!(class_of("HEALTHY"), Some(2));
        assert_eq!(class_of("normal"), Some(2));
        assert_eq!(class_of("pituitary_adenoma"), Some(3));
        assert_eq!(class_of("yes"), None);
        // The table's classes are CLASSES, in order.
        let table: Vec<&str> = ALIASES.iter().map(|(c, _)| *c).collect();
        assert_eq!(table, CLASSES);
    }

    #[test]
    fn extensions_are_case_insensitive() {
        assert!(is_image(Path::new("a/B.JPG")));
        assert!(is_image(Path::new("a/b.TiFf")));
        assert!(!is_image(Path::new("a/b.txt")));
        assert!(!is_image(Path::new("a/jpg")));
    }
}
