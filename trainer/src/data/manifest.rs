//! Dataset manifests: the exact files of a known public dataset (relative
//! path, class, SHA-256, size), committed under `trainer/manifests/` and
//! built into the binary, so anyone can check that they train and test on
//! the same images we did, and a run says whether it did.
//!
//! A manifest is a tab-separated file: `#` comment lines (what the files are,
//! where they came from, their licence), a header `path class sha256 bytes`,
//! then one line per file. A dataset folder is compared with every known
//! manifest by path: each manifest that shares paths with the folder is
//! reported with how many files match, differ (same path, other bytes), are
//! missing from the folder, or are in the folder under that manifest's
//! top-level folders but not in it. The folder *matches* when every image in
//! it is accounted for by complete manifests.

use super::layout::{relative, ScannedFile};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// The manifests built into the binary: (file name, contents).
pub const KNOWN: [(&str, &str); 3] = [
    ("nickparvar-training-224.tsv", include_str!("../../manifests/nickparvar-training-224.tsv")),
    ("nickparvar-testing.tsv", include_str!("../../manifests/nickparvar-testing.tsv")),
    ("nickparvar-testing-224.tsv", include_str!("../../manifests/nickparvar-testing-224.tsv")),
];

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub class: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    /// The first comment line: what the files are.
    pub title: String,
    pub entries: HashMap<String, Entry>,
}

impl Manifest {
    pub fn parse(name: &str, text: &str) -> Result<Manifest> {
        let mut title = String::new();
        let mut entries = HashMap::new();
        let mut header = false;
        for (i, line) in text.lines().enumerate() {
            if let Some(c) = line.strip_prefix('#') {
                if title.is_empty() {
                    title = c.trim().to_string();
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if !header {
                if f != ["path", "class", "sha256", "bytes"] {
                    bail!("{name}: line {}: expected the header `path<TAB>class<TAB>sha256<TAB>bytes`", i + 1);
                }
                header = true;
                continue;
            }
            let [path, class, sha256, bytes] = f[..] else { bail!("{name}: line {}: expected 4 tab-separated fields, found {}", i + 1, f.len()) };
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{name}: line {}: `{sha256}` is not a SHA-256 in hex", i + 1);
            }
            let Ok(bytes) = bytes.parse() else { bail!("{name}: line {}: size `{bytes}` is not a number", i + 1) };
            let entry = Entry { class: class.to_string(), sha256: sha256.to_ascii_lowercase(), bytes };
            if entries.insert(path.to_string(), entry).is_some() {
                bail!("{name}: line {}: `{path}` is listed twice", i + 1);
            }
        }
        if !header {
            bail!("{name}: no header line `path<TAB>class<TAB>sha256<TAB>bytes`");
        }
        Ok(Manifest { name: name.to_string(), title, entries })
    }

    /// Top-level folders of the manifest's paths (e.g. `Training`).
    fn roots(&self) -> Vec<&str> {
        let mut r: Vec<&str> = self.entries.keys().filter_map(|p| p.split('/').next()).collect();
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// How a folder compares with one manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestMatch {
    pub manifest: String,
    pub title: String,
    pub listed: usize,
    pub matched: usize,
    /// Same path, other bytes (or another class).
    pub differ: Vec<String>,
    pub missing: Vec<String>,
    /// In the folder under the manifest's top-level folders, not listed.
    pub extra: Vec<String>,
}

impl ManifestMatch {
    pub fn complete(&self) -> bool {
        self.matched == self.listed && self.differ.is_empty() && self.extra.is_empty()
    }
}

/// How a folder compares with the known manifests.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub manifests: Vec<ManifestMatch>,
    /// Images in the folder that no known manifest lists.
    pub unlisted: usize,
    /// Every image is listed, and each manifest that lists any is complete.
    pub matches: bool,
}

impl Match {
    /// One line per manifest, e.g. for the terminal and the card.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .manifests
            .iter()
            .map(|m| {
                if m.complete() {
                    format!("all {} files of {} ({})", m.listed, m.manifest, m.title)
                } else {
                    format!(
                        "{} of {} files of {} match ({} differ, {} missing, {} not listed)",
                        m.matched,
                        m.listed,
                        m.manifest,
                        m.differ.len(),
                        m.missing.len(),
                        m.extra.len()
                    )
                }
            })
            .collect();
        if self.unlisted > 0 {
            parts.push(format!("{} images in no known manifest", self.unlisted));
        }
        parts.join("; ")
    }

    /// Counts and a few file names, for a warning that says what differs.
    pub fn problems(&self) -> String {
        let mut out = Vec::new();
        for m in self.manifests.iter().filter(|m| !m.complete()) {
            let few = |v: &[String]| v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
            if !m.differ.is_empty() {
                out.push(format!("{}: {} files differ (e.g. {})", m.manifest, m.differ.len(), few(&m.differ)));
            }
            if !m.missing.is_empty() {
                out.push(format!("{}: {} files missing (e.g. {})", m.manifest, m.missing.len(), few(&m.missing)));
            }
            if !m.extra.is_empty() {
                out.push(format!("{}: {} files not in the manifest (e.g. {})", m.manifest, m.extra.len(), few(&m.extra)));
            }
        }
        out.join("\n")
    }
}

/// The known manifests, parsed.
pub fn known() -> Vec<Manifest> {
    // They are committed files, checked by a test: a parse error is a build bug, skip it.
    KNOWN.iter().filter_map(|(name, text)| Manifest::parse(name, text).ok()).collect()
}

/// Compares the scanned image files of the dataset folder `root` with the
/// known manifests. `None` when no manifest shares a path with the folder.
pub fn check_folder(root: &Path, files: &[ScannedFile]) -> Option<Match> {
    check_against(root, files, &known())
}

pub fn check_against(root: &Path, files: &[ScannedFile], manifests: &[Manifest]) -> Option<Match> {
    let paths: Vec<String> = files.iter().map(|f| relative(root, &f.path)).collect();
    let mut hashes: HashMap<&str, Option<(String, u64)>> = HashMap::new();
    let mut out = Vec::new();
    let mut listed_anywhere = vec![false; paths.len()];
    for m in manifests {
        if !paths.iter().any(|p| m.entries.contains_key(p)) {
            continue;
        }
        let roots = m.roots();
        let mut r = ManifestMatch { manifest: m.name.clone(), title: m.title.clone(), listed: m.entries.len(), matched: 0, differ: vec![], missing: vec![], extra: vec![] };
        for (i, (p, f)) in paths.iter().zip(files).enumerate() {
            match m.entries.get(p) {
                Some(e) => {
                    listed_anywhere[i] = true;
                    let got = hashes.entry(p.as_str()).or_insert_with(|| file_hash(&f.path)).clone();
                    let class_ok = f.label as usize == class_index(&e.class).unwrap_or(usize::MAX);
                    match got {
                        Some((sha, bytes)) if sha == e.sha256 && bytes == e.bytes && class_ok => r.matched += 1,
                        _ => r.differ.push(p.clone()),
                    }
                }
                None if roots.contains(&p.split('/').next().unwrap_or("")) => r.extra.push(p.clone()),
                None => {}
            }
        }
        let present: std::collections::HashSet<&str> = paths.iter().map(String::as_str).collect();
        let mut missing: Vec<String> = m.entries.keys().filter(|k| !present.contains(k.as_str())).cloned().collect();
        missing.sort();
        r.missing = missing;
        r.differ.sort();
        r.extra.sort();
        out.push(r);
    }
    // A manifest that shares names but not one file's bytes with the folder
    // is another version of the same files (e.g. the 224-pixel copy of
    // Testing/): leave it out when some manifest does match those names.
    let covered: std::collections::HashSet<&str> =
        out.iter().filter(|r| r.matched > 0).flat_map(|r| manifests.iter().find(|m| m.name == r.manifest)).flat_map(|m| m.roots()).collect();
    out.retain(|r| r.matched > 0 || !manifests.iter().find(|m| m.name == r.manifest).is_some_and(|m| m.roots().iter().all(|x| covered.contains(x))));
    if out.is_empty() {
        return None;
    }
    let unlisted = listed_anywhere.iter().filter(|l| !**l).count();
    let matches = unlisted == 0 && out.iter().all(ManifestMatch::complete);
    Some(Match { manifests: out, unlisted, matches })
}

fn class_index(name: &str) -> Option<usize> {
    mriscreen::CLASSES.iter().position(|c| *c == name)
}

fn file_hash(path: &Path) -> Option<(String, u64)> {
    let bytes = std::fs::read(path).ok()?;
    Some((mriscreen::model::sha256_hex(&bytes), bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::layout::Source;

    #[test]
    fn known_manifests_parse_and_list_the_kaggle_counts() {
        for (name, text) in KNOWN {
            let m = Manifest::parse(name, text).unwrap_or_else(|e| panic!("{e:#}"));
            assert!(!m.title.is_empty(), "{name} has a title line");
            let per_class = |c: &str| m.entries.values().filter(|e| e.class == c).count();
            let counts: Vec<usize> = ["glioma", "meningioma", "notumor", "pituitary"].iter().map(|c| per_class(c)).collect();
            // Kaggle: Training 1321/1339/1595/1457 (the 224 mirror lacks 4 notumor files), Testing 300/306/405/300.
            let want: &[usize] = if name.contains("training") { &[1321, 1339, 1591, 1457] } else { &[300, 306, 405, 300] };
            assert_eq!(counts, want, "{name}");
        }
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_line() {
        let e = Manifest::parse("m", "# t\npath\tclass\tsha256\tbytes\na.jpg\tglioma\tnothex\t3\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("SHA-256"), "{e}");
        let e = Manifest::parse("m", "a\tb\n").unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
        let sha = "0".repeat(64);
        let twice = format!("path\tclass\tsha256\tbytes\na\tglioma\t{sha}\t1\na\tglioma\t{sha}\t1\n");
        assert!(Manifest::parse("m", &twice).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn a_folder_is_compared_file_by_file() {
        let root = std::env::temp_dir().join(format!("mriscreen-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let put = |rel: &str, bytes: &[u8]| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
            ScannedFile { path: p, label: if rel.contains("glioma") { 0 } else { 2 }, source: Source::Training }
        };
        let sha = |b: &[u8]| mriscreen::model::sha256_hex(b);
        let text = format!(
            "# test set\npath\tclass\tsha256\tbytes\nTraining/glioma/a.jpg\tglioma\t{}\t1\nTraining/glioma/b.jpg\tglioma\t{}\t1\nTraining/notumor/c.jpg\tnotumor\t{}\t1\n",
            sha(b"a"),
            sha(b"b"),
            sha(b"c")
        );
        let m = Manifest::parse("test.tsv", &text).unwrap();
        let exact = vec![put("Training/glioma/a.jpg", b"a"), put("Training/glioma/b.jpg", b"b"), put("Training/notumor/c.jpg", b"c")];
        let r = check_against(&root, &exact, std::slice::from_ref(&m)).unwrap();
        assert!(r.matches, "{r:?}");
        assert!(r.summary().starts_with("all 3 files of test.tsv"), "{}", r.summary());

        // One file changed, one missing, one extra.
        let files = vec![put("Training/glioma/a.jpg", b"A"), put("Training/notumor/c.jpg", b"c"), put("Training/notumor/d.jpg", b"d")];
        let r = check_against(&root, &files, std::slice::from_ref(&m)).unwrap();
        assert!(!r.matches);
        let mm = &r.manifests[0];
        assert_eq!((mm.matched, mm.differ.len(), mm.missing.len(), mm.extra.len()), (1, 1, 1, 1), "{mm:?}");
        assert!(r.problems().contains("1 files differ (e.g. Training/glioma/a.jpg)"), "{}", r.problems());

        // A folder no manifest knows.
        let other = vec![put("x/glioma/z.jpg", b"z")];
        assert!(check_against(&root, &other, &[m]).is_none());
        let _ = std::fs::remove_dir_all(&root);
    }
}
