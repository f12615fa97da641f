//! `mriscreen`: the command line for screening images with an ONNX model,
//! measuring a model's latency, and (as the trainer grows) training,
//! compressing and evaluating models. Research software, not a diagnostic
//! device.

mod calibrate;
mod cmd;
mod compare;
mod data;
mod evaluate;
mod export;
mod files;
mod model_args;
mod models;
mod quantize;
mod reproduce;
mod synth;
mod train;
mod weights;

use clap::{Parser, Subcommand};
use cmd::{bench, bench_train, leakage, predict, random_model};

// Training allocates and frees tensors of hundreds of megabytes every step;
// glibc hands each back to the kernel (page faults and TLB shootdowns on the
// next step), mimalloc keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_reserve_os_memory(size: usize, commit: bool, allow_large: bool) -> std::ffi::c_int;
}

/// Keeps freed memory instead of returning it to the kernel (which would zero
/// it again on the next step): mimalloc's `purge_delay` = -1, and one large
/// address range reserved (not committed) up front.
fn keep_freed_memory() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: plain configuration calls into the allocator linked above,
    // made before any other thread exists.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        mi_reserve_os_memory(16 << 30, false, false);
    }
}

#[derive(Parser)]
#[command(name = "mriscreen", version, about = "Brain-tumour MRI screening models: predict, benchmark, build.", long_about = format!(
    "Brain-tumour MRI screening models: predict, benchmark, build.\n\n{}", mriscreen::DISCLAIMER
))]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify image files (JPEG, PNG, BMP, TIFF, WebP, DICOM) with an ONNX model; each result says whether to refer it for expert review, and why.
    Predict(predict::Args),
    /// Measure inference latency of a model (default: a random MobileNetV2-1.0 at 224 px) and write it to a JSON file.
    Bench(bench::Args),
    /// Write a randomly initialised model (for placeholders, tests and timing; it knows nothing).
    RandomModel(random_model::Args),
    /// Generate SynthTumor, a synthetic brain-tumour MRI benchmark on real anatomy (Kaggle folder layout; not real patients).
    Synth(synth::Args),
    /// Evaluate an ONNX model on a dataset's test split: accuracy (95 % CI), per-class precision/recall/F1, confusion matrix.
    Evaluate(cmd::evaluate::Args),
    /// Fit a model's temperature and its "refer for expert review" threshold on a dataset's validation split.
    Calibrate(cmd::calibrate::Args),
    /// Measure training throughput (images/s) of a model family and write it to a JSON file.
    BenchTrain(bench_train::Args),
    /// Study exact and near-duplicate images in a dataset folder (within and across Training/ and Testing/), with contact sheets.
    Leakage(leakage::Args),
    /// Train a classifier on an image-folder dataset (three-stage transfer learning), export it to ONNX and evaluate it.
    Train(Box<train::Args>),
    /// Store a model's weights in fp16, int8 or int4 (post-training quantization), checked on tract; any ONNX model the loader accepts.
    Quantize(cmd::quantize::Args),
    /// Compare compressed variants with their parent on a test split: accuracy (95 % CI), McNemar, paired bootstrap, calibration, bytes, latency; JSON, Markdown and SVG charts.
    Compare(cmd::compare::Args),
    /// Train a compact student from a teacher (knowledge distillation, the teacher on the same augmented image every step); every `train` flag applies, with --student for --arch and --width for MobileNetV2's --alpha.
    Distill(Box<cmd::distill::Args>),
    /// Reproduce the paper's whole table on one dataset: MobileNetV2 three-stage transfer learning (3 seeds), fp16/int8/int4 PTQ and QAT, DenseNet-101 and EfficientNet teachers distilled into DenseNet-32 students (and the no-distillation ablation), every comparison, and a report; resumable.
    Reproduce(reproduce::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Only training churns through large tensors; `predict` and the rest keep
    // the allocator's defaults (no 16 GiB reservation).
    if matches!(cli.command, Command::Train(_) | Command::Distill(_) | Command::BenchTrain(_)) {
        keep_freed_memory();
    }
    let result = match cli.command {
        Command::Predict(a) => predict::run(a),
        Command::Bench(a) => bench::run(a),
        Command::RandomModel(a) => random_model::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Train(a) => train::run(*a),
        Command::Distill(a) => train::run(a.train),
        Command::BenchTrain(a) => bench_train::run(a),
        Command::Evaluate(a) => cmd::evaluate::run(a),
        Command::Leakage(a) => leakage::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Reproduce(a) => reproduce::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
