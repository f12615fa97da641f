//! `mriscreen random-model`: write a randomly initialised model. It knows
//! nothing; it exists for placeholders, tests and latency measurements.

use anyhow::{bail, Context, Result};
use mriscreen::arch::Arch;
use mriscreen::model::random::{self, RandomNet};
use mriscreen::model::Precision;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// mobilenet-v2 (torchvision layout, width set by --alpha), efficientnet-lite0, densenet121,
    /// densenet101, densenet32, or tiny (a two-block CNN, for fast tests).
    #[arg(long, default_value = "mobilenet-v2")]
    arch: String,
    /// MobileNetV2 width multiplier.
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Square input size in pixels.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Class names in output order.
    #[arg(long, default_value = "glioma,meningioma,notumor,pituitary")]
    classes: String,
    /// Weight storage precision.
    #[arg(long, default_value = "fp32", value_parser = |s: &str| s.parse::<Precision>())]
    precision: Precision,
    /// Random seed (the same seed gives the same bytes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the .onnx file.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.out.exists() && !a.force {
        bail!("{} exists; pass --force to overwrite it", a.out.display());
    }
    if !(16..=1024).contains(&a.size) {
        bail!("--size {} is out of range 16..=1024", a.size);
    }
    let classes: Vec<&str> = a.classes.split(',').map(str::trim).collect();
    let mut opts = RandomNet::new(&classes, a.size, a.seed);
    opts.precision = a.precision;
    let bytes = match a.arch.as_str() {
        "tiny" => random::tiny_cnn(&opts),
        name => match name.parse::<Arch>().map_err(anyhow::Error::msg)?.with_alpha(a.alpha) {
            Arch::MobileNetV2 { alpha } => random::mobilenet_v2(alpha, &opts),
            Arch::EfficientNetLite0 => random::efficientnet_lite0(&opts),
            Arch::DenseNet(d) => random::densenet(&d.config(), &opts),
        },
    };
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!("{}: {} bytes, sha256 {}", a.out.display(), bytes.len(), mriscreen::model::sha256_hex(&bytes));
    Ok(ExitCode::SUCCESS)
}
