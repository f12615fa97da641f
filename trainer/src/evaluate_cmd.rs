//! `mriscreen evaluate`: runs an ONNX model, exactly as the page and
//! `predict` run it, on a dataset's held-out test split and reports accuracy
//! (with its 95 % interval and the number of images), per-class precision,
//! recall and F1, and the confusion matrix, as a table and as JSON.

use crate::data::{Split, SplitArgs};
use crate::model_args::read_limited;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to evaluate.
    #[arg(long, short)]
    model: PathBuf,
    /// The dataset and how `train` split it; its test split is used.
    #[command(flatten)]
    split: SplitArgs,
    /// Where to write the JSON report (default: print the table only).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let bytes = read_limited(&a.model, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?;
    let ds = a.split.load()?;
    let info = mriscreen::ModelPackage::read(&bytes, &Default::default())?.info;
    if info.classes != ds.classes {
        bail!("the model's classes {:?} differ from the dataset's {:?}", info.classes, ds.classes);
    }
    if ds.split(Split::Test).is_empty() {
        bail!("{} has no test images", a.split.data.display());
    }
    let evaluation = crate::train::evaluate_onnx(&bytes, &ds, Split::Test)?;
    println!("{}\n", mriscreen::DISCLAIMER);
    println!("model {} on the test split of {}:\n{}", a.model.display(), a.split.data.display(), evaluation.table());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&evaluation)? + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
