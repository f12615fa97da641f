//! `mriscreen calibrate`: fit a model's temperature, refer threshold and
//! familiarity statistics on a dataset's validation split (the fitting is in
//! `crate::calibrate`, shared with `train`).

use crate::calibrate::calibrate_onnx;
use crate::data::SplitArgs;
use crate::files::{read_limited, write_atomic};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model to calibrate (as `train` exports it; a calibrated one needs `--again`).
    #[arg(long, short)]
    model: PathBuf,
    /// The dataset it was trained on and how it was split; its validation split is used.
    #[command(flatten)]
    split: SplitArgs,
    /// Accuracy required of the results that are not referred for expert review.
    #[arg(long, default_value_t = 0.95)]
    target_accuracy: f64,
    /// Where to write the calibrated model (its `calibration.json` goes next to it).
    #[arg(long, short)]
    out: PathBuf,
    /// Overwrite `--out` and the `calibration.json` beside it if they exist
    /// (`--out` may be the model itself).
    #[arg(long)]
    force: bool,
    /// Calibrate a model that already is: temperature, refer threshold and
    /// familiarity statistics are fitted afresh from its raw outputs.
    #[arg(long)]
    again: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.target_accuracy) {
        bail!("--target-accuracy must be between 0 and 1, e.g. 0.95");
    }
    let report = a.out.with_file_name("calibration.json");
    for path in [&a.out, &report] {
        if path.exists() && !a.force {
            bail!("{} exists; pass --force to overwrite it", path.display());
        }
    }
    let bytes = read_limited(&a.model, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?;
    let ds = a.split.load()?;
    let (cal, out) = calibrate_onnx(&bytes, &ds, a.target_accuracy, a.again)?;
    write_atomic(&a.out, &out)?;
    cal.write_report(&report)?;
    println!("{}\n{}", mriscreen::DISCLAIMER, cal.summary());
    println!("written: {} and {}", a.out.display(), report.display());
    Ok(ExitCode::SUCCESS)
}
