//! Flags that choose a model and fill in what a third-party ONNX file lacks,
//! shared by every subcommand that loads a model.

use crate::files::read_limited;
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use mriscreen::model::{parse_classes, parse_size, parse_triple};
use mriscreen::preprocess::{Intensity, Resize};
use mriscreen::{LoadOptions, Overrides};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum)]
pub enum ResizeArg {
    /// Keep the aspect ratio, pad with black (what mriscreen models expect).
    Letterbox,
    /// Stretch each axis to the input size.
    Stretch,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum IntensityArg {
    /// Map the 0.5–99.5th percentile window to [0, 1].
    Robust,
    /// Divide by the sample type's maximum (255 or 65535), like torchvision's ToTensor.
    Unit,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// WebGPU (Vulkan here) if it loads and agrees with the CPU on a self-check, else the CPU.
    Auto,
    /// WebGPU only (Vulkan natively); failures are errors.
    Gpu,
    /// tract on the CPU: the reference backend.
    Cpu,
}

impl From<BackendArg> for mriscreen::BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => mriscreen::BackendChoice::Auto,
            BackendArg::Gpu => mriscreen::BackendChoice::Gpu,
            BackendArg::Cpu => mriscreen::BackendChoice::Cpu,
        }
    }
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// ONNX model file. Default: the default model in ./models/manifest.json.
    #[arg(long, short)]
    pub model: Option<PathBuf>,
    /// Inference backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendArg,
    /// Refuse the model unless its SHA-256 is this (64 hex digits).
    #[arg(long)]
    pub sha256: Option<String>,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

/// What a third-party ONNX file without mriscreen metadata lacks.
#[derive(clap::Args)]
pub struct OverrideArgs {
    /// Class names in output order, for a model without mriscreen metadata: a,b,c.
    #[arg(long)]
    pub classes: Option<String>,
    /// Per-channel mean subtracted after scaling to [0, 1]: r,g,b (or one value).
    #[arg(long)]
    pub mean: Option<String>,
    /// Per-channel standard deviation divided by: r,g,b (or one value).
    #[arg(long)]
    pub std: Option<String>,
    /// How the image is fitted to the model's input.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeArg>,
    /// How raw pixel values are scaled to [0, 1].
    #[arg(long, value_enum)]
    pub intensity: Option<IntensityArg>,
    /// Input size for a model whose file does not fix it: 224 or WxH.
    #[arg(long)]
    pub input_size: Option<String>,
}

/// A model file's bytes and how to load them.
pub struct ChosenModel {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub options: LoadOptions,
}

impl OverrideArgs {
    pub fn overrides(&self) -> Result<Overrides> {
        let triple = |flag: &str, v: &Option<String>| -> Result<Option<[f32; 3]>> {
            v.as_deref()
                .map(|s| parse_triple(s).with_context(|| format!("--{flag} {s:?}: expected r,g,b or a single number")))
                .transpose()
        };
        Ok(Overrides {
            classes: self.classes.as_deref().map(parse_classes),
            mean: triple("mean", &self.mean)?,
            std: triple("std", &self.std)?,
            resize: self.resize.map(|r| match r {
                ResizeArg::Letterbox => Resize::Letterbox,
                ResizeArg::Stretch => Resize::Stretch,
            }),
            intensity: self.intensity.map(|i| match i {
                IntensityArg::Robust => Intensity::Robust,
                IntensityArg::Unit => Intensity::Unit,
            }),
            input_size: self
                .input_size
                .as_deref()
                .map(|s| parse_size(s).with_context(|| format!("--input-size {s:?}: expected e.g. 224 or 256x192")))
                .transpose()?,
        })
    }
}

impl ModelArgs {
    /// Reads the chosen model: `--model`, else the manifest's default (whose
    /// SHA-256 is then checked).
    pub fn load(&self) -> Result<ChosenModel> {
        let overrides = self.overrides.overrides()?;
        let (path, manifest_hash) = match &self.model {
            Some(p) => (p.clone(), None),
            None => default_model(Path::new("models"))?,
        };
        let bytes = read_limited(&path, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)
            .with_context(|| format!("reading model {}", path.display()))?;
        let expected_sha256 = self.sha256.clone().or(manifest_hash);
        Ok(ChosenModel { path, bytes, options: LoadOptions { expected_sha256, overrides, ..Default::default() } })
    }
}

/// The default model named by `dir/manifest.json`, with its expected hash.
fn default_model(dir: &Path) -> Result<(PathBuf, Option<String>)> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!("no --model given and no {} here; pass --model FILE.onnx or run from the repository root", manifest_path.display())
    })?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", manifest_path.display()))?;
    let default = manifest["default"].as_str().with_context(|| format!("{} has no \"default\" entry", manifest_path.display()))?;
    let models = manifest["models"].as_array().map(Vec::as_slice).unwrap_or_default();
    let Some(entry) = models.iter().find(|m| m["id"] == default) else {
        bail!("{}: default model {default:?} is not listed under \"models\"", manifest_path.display());
    };
    let file = entry["file"].as_str().with_context(|| format!("{}: model {default:?} has no \"file\"", manifest_path.display()))?;
    Ok((dir.join(file), entry["sha256"].as_str().map(str::to_string)))
}
