//! `mriscreen`: the command line for screening images with an ONNX model,
//! measuring a model's latency, and (as the trainer grows) training,
//! compressing and evaluating models. Research software, not a diagnostic
//! device.

mod bench;
mod model_args;
mod predict;
mod random_model;

use clap::{Parser, Subcommand};

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
    /// Classify image files (JPEG, PNG, BMP, TIFF, WebP) with an ONNX model.
    Predict(predict::Args),
    /// Measure inference latency of a model (default: a random MobileNetV2-1.0 at 224 px) and write it to a JSON file.
    Bench(bench::Args),
    /// Write a randomly initialised model (for placeholders, tests and timing; it knows nothing).
    RandomModel(random_model::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(a) => predict::run(a),
        Command::Bench(a) => bench::run(a),
        Command::RandomModel(a) => random_model::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
