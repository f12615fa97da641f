//! `mriscreen evaluate`: runs an ONNX model, exactly as the page and
//! `predict` run it, on a dataset's held-out test split — or, with
//! `--external`, on every image of a folder (an external test set) — and
//! reports accuracy (with its 95 % interval and the number of images),
//! per-class precision, recall and F1, the confusion matrix, the
//! deduplicated test subset, and the screening question (any tumour vs
//! notumor: sensitivity and specificity with Wilson intervals; `--binary`
//! shows only that), as a table and as JSON with one line per image.

use crate::data::{load_dataset, Split, SplitArgs};
use crate::files::read_limited;
use anyhow::{bail, Context, Result};
use serde::Serialize;
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
    /// Evaluate on every image in --data (an external test set: one folder per class,
    /// or Training/ + Testing/; classes may be missing) instead of its test split.
    #[arg(long)]
    external: bool,
    /// Report the screening question only: any tumour class against notumor
    /// (sensitivity and specificity with 95 % Wilson intervals and n).
    #[arg(long)]
    binary: bool,
    /// Where to write the JSON report, with every image's prediction (default: print the table only).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Evaluate the validation split instead of the test split (for choices made during development,
    /// which must never look at the test split).
    #[arg(long, conflicts_with = "external")]
    validation: bool,
}

/// One image's result, for the JSON report.
#[derive(Serialize)]
struct ImageResult {
    file: String,
    class: String,
    predicted: String,
    /// The top calibrated probability.
    probability: f32,
    /// Whether a training image is in this image's near-duplicate cluster
    /// (false: the image is in the deduplicated subset).
    near_copy_in_training: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    model: String,
    data: String,
    what: &'a str,
    #[serde(flatten)]
    evaluation: &'a crate::evaluate::Evaluation,
    images: Vec<ImageResult>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let bytes = read_limited(&a.model, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?;
    let info = mriscreen::ModelPackage::read(&bytes, &Default::default())?.info;
    let mut opts = a.split.options();
    opts.all_test = a.external;
    let ds = load_dataset(&a.split.data, &opts)?;
    if info.classes != ds.classes {
        bail!("the model's classes {:?} differ from the dataset's {:?}", info.classes, ds.classes);
    }
    let split = if a.validation { Split::Val } else { Split::Test };
    if ds.split(split).is_empty() {
        bail!("{} has no {} images; for a folder without Testing/, pass --external to test on every image", a.split.data.display(), split.name());
    }
    let (evaluation, results) = crate::evaluate::evaluate_onnx_each(&bytes, &ds, split)?;
    let clean: std::collections::HashSet<usize> = ds.without_training_copies(split).into_iter().collect();
    let what = if a.external { "every image (external test set)" } else if a.validation { "the validation split" } else { "the test split" };
    println!("{}\n", mriscreen::DISCLAIMER);
    println!("model {} on {what} of {}:", a.model.display(), a.split.data.display());
    if a.binary {
        match &evaluation.binary {
            Some(b) => println!("{}", binary_table(b)),
            None => bail!("--binary needs a model and data with a notumor class"),
        }
    } else {
        println!("{}", evaluation.table());
    }
    if let Some(path) = &a.json {
        let images = ds
            .split(split)
            .iter()
            .zip(&results)
            .map(|(&i, p)| ImageResult {
                file: crate::data::layout::relative(&ds.root, &ds.samples[i].path),
                class: ds.classes[ds.samples[i].label as usize].clone(),
                predicted: p.label.clone(),
                probability: p.probabilities.iter().map(|c| c.probability).fold(0.0, f32::max),
                near_copy_in_training: !clean.contains(&i),
            })
            .collect();
        let report = Report { model: a.model.display().to_string(), data: a.split.data.display().to_string(), what, evaluation: &evaluation, images };
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The 2×2 table of the screening question.
fn binary_table(b: &crate::evaluate::Binary) -> String {
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    format!(
        "                 called tumour  called {neg}\n\
         tumour           {tp:>13}  {fnn:>7}{pad}\n\
         {neg:<16} {fp:>13}  {tn:>7}\n\n\
         sensitivity {} (95 % Wilson CI {}–{}), n = {} tumour images\n\
         specificity {} (95 % Wilson CI {}–{}), n = {} {neg} images",
        pct(b.sensitivity),
        pct(b.sensitivity_ci95[0]),
        pct(b.sensitivity_ci95[1]),
        b.positives,
        pct(b.specificity),
        pct(b.specificity_ci95[0]),
        pct(b.specificity_ci95[1]),
        b.negatives,
        neg = b.negative,
        tp = b.true_positives,
        fnn = b.positives - b.true_positives,
        fp = b.negatives - b.true_negatives,
        tn = b.true_negatives,
        pad = ""
    )
}
