//! Reading and writing the user's files safely (bounded reads, writes that
//! never leave a half-written file where a good one was), and the progress
//! bar long work over many files shows.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// Reads a file, refusing directories and files over `limit` bytes before
/// reading them.
pub fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a folder; name the files inside it", path.display());
    }
    if meta.len() > limit as u64 {
        bail!("{} is {} bytes, over the {limit}-byte limit", path.display(), meta.len());
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a kill
/// never leaves a half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// A progress bar for `len` steps, labelled `label`.
pub fn progress(len: usize, label: String) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
    pb.set_prefix(label);
    pb
}
