//! `mriscreen quantize`: store a model's weights in fp16, int8 or int4 (the
//! work is in `crate::quantize`), check the result on tract, write it and a
//! JSON report with every layer's SQNR.

use crate::data::layout::image_files;
use crate::files::{progress, read_limited, write_atomic};
use crate::model_args::OverrideArgs;
use crate::quantize::{quantize, Options, Report};
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use mriscreen::model::quant::{Range, Scheme, DEFAULT_BLOCK};
use mriscreen::model::{LoadOptions, ModelPackage, Precision};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum To {
    /// float16 weights and biases (half the bytes; the paper's method).
    Fp16,
    /// int8 weights, one float16 scale per output channel; float16 biases.
    Int8,
    /// int4 weights in blocks of --block input channels (per output channel where a block does not fit); float16 biases.
    Int4,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RangeArg {
    Mse,
    Minmax,
}

#[derive(clap::Args)]
pub struct Args {
    /// The fp32 ONNX model to quantize (ours or any the loader accepts; see the override flags for one without metadata).
    pub model: PathBuf,
    /// Precision to store the weights in.
    #[arg(long, value_enum)]
    pub to: To,
    /// Where to write the quantized model; the report goes beside it as `<name>.quantize.json`.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Input channels per int4 scale (a positive even number; int8 uses one scale per output channel unless this is given).
    #[arg(long)]
    pub block: Option<usize>,
    /// One scale per output channel for int4 too (no blocks).
    #[arg(long, conflicts_with = "block")]
    pub per_channel: bool,
    /// How each group's clipping value is chosen: mse (the one of 71 candidates from 0.3 to 1.0 × max|w| with the
    /// least squared weight error) or minmax (max|w|, nothing clipped).
    #[arg(long, value_enum, default_value = "mse")]
    pub range: RangeArg,
    /// A folder of images (searched recursively) for bias correction: each layer's bias absorbs the mean
    /// shift its quantized weights cause on these images. They also serve as the inputs of the tract check.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// At most this many calibration images (spread evenly over the folder's sorted files).
    #[arg(long, default_value_t = 64)]
    pub calib_count: usize,
    /// Print every layer's storage and SQNR.
    #[arg(long, short)]
    pub verbose: bool,
    /// Overwrite --out and its report if they exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

/// The report's path beside the model: `x.onnx` → `x.quantize.json`.
pub fn report_path(out: &Path) -> PathBuf {
    out.with_extension("quantize.json")
}

/// Up to `count` images of `dir`, spread evenly over its sorted files,
/// decoded and preprocessed for `package`; files that fail are listed.
pub fn calibration_inputs(dir: &Path, count: usize, package: &ModelPackage) -> Result<(Vec<Vec<f32>>, Vec<String>)> {
    if !dir.is_dir() {
        bail!("--calib {}: not a folder of images", dir.display());
    }
    let (files, _) = image_files(dir)?;
    if files.is_empty() {
        bail!("--calib {}: no image files (JPEG, PNG, BMP, TIFF, WebP, DICOM) in it or below it", dir.display());
    }
    let count = count.clamp(1, files.len());
    let chosen: Vec<&PathBuf> = (0..count).map(|k| &files[k * files.len() / count]).collect();
    let pb = progress(chosen.len(), "calibration".into());
    let (mut inputs, mut failed) = (Vec::new(), Vec::new());
    for path in chosen {
        let result = read_limited(path, mriscreen::Limits::default().max_bytes)
            .and_then(|b| Ok(mriscreen::decode::decode(&b, &mriscreen::Limits::default())?));
        match result {
            Ok(d) => inputs.push(mriscreen::preprocess::preprocess(&d.image, &package.info.input)),
            Err(e) => failed.push(format!("{}: {e:#}", path.display())),
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if inputs.is_empty() {
        bail!("--calib {}: none of the {} images chosen could be read (first: {})", dir.display(), failed.len(), failed[0]);
    }
    Ok((inputs, failed))
}

fn summary(r: &Report, out: &Path, report: &Path) -> String {
    let mut sqnr: Vec<f64> = r.layers.iter().map(|l| l.sqnr_db).collect();
    sqnr.sort_by(f64::total_cmp);
    let median = sqnr.get(sqnr.len() / 2).copied().unwrap_or(f64::NAN);
    let mut s = format!(
        "{} ({}): {} → {} bytes ({:.1} %), {} weight tensors quantized, SQNR min {:.1} dB, median {:.1} dB",
        r.precision,
        r.method,
        r.bytes_in,
        r.bytes_out,
        100.0 * r.bytes_out as f64 / r.bytes_in.max(1) as f64,
        r.layers.len(),
        sqnr.first().copied().unwrap_or(f64::NAN),
        median
    );
    if r.folded_batch_norms > 0 {
        s += &format!("\nBatchNormalization folded into {} convolutions", r.folded_batch_norms);
    }
    if r.bias_correction_images > 0 {
        s += &format!("\nbias correction from {} calibration images", r.bias_correction_images);
    }
    if !r.left_in_fp32.is_empty() {
        s += &format!("\nleft in fp32 (read by ops the quantizer does not compress): {}", r.left_in_fp32.join(", "));
    }
    s += &format!(
        "\ntract check: the file matches its fp32 twin within {:.1e} of the logit scale on {} inputs\nwritten: {} and {}\n\
         not calibrated: fit its temperature, refer threshold and familiarity on your validation split, e.g.\n  \
         mriscreen calibrate --model {} --data DATASET --seed SEED --out {} --force",
        r.check_relative_diff,
        r.check_inputs,
        out.display(),
        report.display(),
        out.display(),
        out.display()
    );
    s
}

pub fn run(a: Args) -> Result<ExitCode> {
    let precision = match a.to {
        To::Fp16 => Precision::Fp16,
        To::Int8 => Precision::Int8,
        To::Int4 => Precision::Int4,
    };
    if let Some(b) = a.block {
        if b == 0 || b % 2 != 0 {
            bail!("--block {b}: must be a positive multiple of 2 (e.g. 32); --per-channel gives one scale per output channel");
        }
    }
    if a.calib_count == 0 {
        bail!("--calib-count must be at least 1");
    }
    let report_path = report_path(&a.out);
    let same = |p: &Path| std::fs::canonicalize(p).ok().zip(std::fs::canonicalize(&a.model).ok()).is_some_and(|(x, y)| x == y);
    if same(&a.out) {
        bail!("--out is the model being quantized; write the quantized model to another file");
    }
    for p in [&a.out, &report_path] {
        if p.exists() && !a.force {
            bail!("{} exists; pass --force to overwrite it", p.display());
        }
    }
    let scheme = match precision {
        Precision::Int4 if a.per_channel => Scheme::int4(0),
        Precision::Int4 => Scheme::int4(a.block.unwrap_or(DEFAULT_BLOCK)),
        _ => Scheme { block: a.block.unwrap_or(0), ..Scheme::int8() },
    };
    let scheme = scheme.with_range(match a.range {
        RangeArg::Mse => Range::Mse,
        RangeArg::Minmax => Range::MinMax,
    });
    let bytes = read_limited(&a.model, mriscreen::model::DEFAULT_MAX_MODEL_BYTES).with_context(|| format!("reading {}", a.model.display()))?;
    let load = LoadOptions { overrides: a.overrides.overrides()?, ..Default::default() };
    let package = ModelPackage::read(&bytes, &load).with_context(|| format!("{} is not a model mriscreen can load", a.model.display()))?;
    let (calib, failed) = match &a.calib {
        Some(dir) => calibration_inputs(dir, a.calib_count, &package)?,
        None => (Vec::new(), Vec::new()),
    };
    if !failed.is_empty() {
        eprintln!("skipped {} calibration file(s) that could not be read:", failed.len());
        for f in &failed {
            eprintln!("  {f}");
        }
    }
    let opts = Options { precision, scheme, bias_correction: !calib.is_empty(), calib, method: "ptq", parent_sha256: None };
    let (out, report) = quantize(&bytes, &load, &opts).with_context(|| format!("quantizing {}", a.model.display()))?;
    if a.verbose {
        println!("{:<48} {:>20}  {:<44} {:>8}", "weight", "shape", "storage", "SQNR dB");
        for l in &report.layers {
            println!("{:<48} {:>20}  {:<44} {:>8.1}{}", l.weight, format!("{:?}", l.shape), l.storage, l.sqnr_db, if l.bias_corrected { "  (bias corrected)" } else { "" });
        }
    }
    write_atomic(&a.out, &out)?;
    write_atomic(&report_path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("{}", summary(&report, &a.out, &report_path));
    Ok(ExitCode::SUCCESS)
}
