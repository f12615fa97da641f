//! `mriscreen compare`: compressed variants against their parent on one
//! dataset (the work is in `crate::compare`); writes compare.json,
//! compare.md and SVG charts.

use crate::data::SplitArgs;
use crate::files::read_limited;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The reference model (usually the fp32 original); every other model is compared with it.
    #[arg(long)]
    parent: PathBuf,
    /// The variants to compare (ONNX files).
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// The dataset and how the models' training split it: its test split is compared, its validation split
    /// decides which variant is chosen.
    #[command(flatten)]
    split: SplitArgs,
    /// Folder for compare.json, compare.md and the SVG charts.
    #[arg(long, short)]
    out: PathBuf,
    /// Paired bootstrap resamples for the accuracy differences.
    #[arg(long, default_value_t = 10_000)]
    resamples: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 2026)]
    bootstrap_seed: u64,
    /// Timed tract runs per model for the latency median (after three warm-up runs).
    #[arg(long, default_value_t = 30)]
    latency_runs: usize,
    /// Overwrite an existing compare.json in --out.
    #[arg(long)]
    force: bool,
}

/// A short name for a model file: its file stem.
fn name_of(p: &std::path::Path) -> String {
    p.file_stem().map_or_else(|| p.display().to_string(), |s| s.to_string_lossy().into_owned())
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.resamples < 1000 {
        bail!("--resamples {}: use at least 1,000 (10,000 is the default)", a.resamples);
    }
    if a.out.join("compare.json").exists() && !a.force {
        bail!("{} already holds a comparison; pass --force to replace it", a.out.display());
    }
    let mut models = Vec::new();
    for p in std::iter::once(&a.parent).chain(&a.models) {
        let bytes = read_limited(p, mriscreen::model::DEFAULT_MAX_MODEL_BYTES).with_context(|| format!("reading model {}", p.display()))?;
        models.push((name_of(p), p.display().to_string(), bytes));
    }
    let mut names: Vec<&String> = models.iter().map(|m| &m.0).collect();
    names.sort();
    names.dedup();
    if names.len() != models.len() {
        bail!("two models have the same file name; give each variant its own name");
    }
    let ds = a.split.load()?;
    eprintln!("{}", mriscreen::DISCLAIMER);
    let req = crate::compare::Request {
        ds: &ds,
        data_label: a.split.data.display().to_string(),
        models,
        resamples: a.resamples,
        seed: a.bootstrap_seed,
        latency_runs: a.latency_runs,
    };
    let c = crate::compare::compare(req)?;
    let written = crate::compare::write(&c, &a.out)?;
    println!("{}", crate::compare::report::markdown(&c));
    println!("written: {}", written.join(", "));
    Ok(ExitCode::SUCCESS)
}
