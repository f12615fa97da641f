//! `mriscreen train`: three-stage transfer learning (the paper's method, after
//! Yosinski et al. 2014 and the Keras fine-tuning recipe) on a folder dataset:
//!
//! 1. backbone frozen (BatchNorm in eval mode), only the classifier trains —
//!    on pooled features computed once and cached, so this stage costs one
//!    forward pass per image;
//! 2. the top `--unfreeze-top` blocks, the last conv and the head train at a
//!    lower learning rate (the frozen part runs in eval mode and is
//!    detached: no gradient flows through it);
//! 3. everything trains at the lowest rate.
//!
//! AdamW with a cosine schedule inside each stage, optional label smoothing
//! and class weights, early stopping when a stage's validation loss stops
//! improving with the best weights over all stages kept, a checkpoint after
//! every epoch (atomic; `--resume` continues after a kill), per-epoch metrics
//! in `metrics.json`, then ONNX export with self-verification, calibration on
//! the validation split (`calibrate`) and an evaluation on the test split.

mod card;
mod checkpoint;
pub mod distill;
mod loss;
mod optim;
mod run;

pub use loss::cross_entropy;
pub use optim::AdamW;
pub use run::{default_weights, run};

use crate::data::augment::AugmentConfig;
use crate::models::Arch;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct Args {
    /// Dataset folder: Kaggle layout (Training/ + Testing/) or one folder per class.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for checkpoints, metrics, the ONNX model and reports.
    #[arg(long)]
    pub out: PathBuf,
    /// Model family: mobilenet-v2 (width set by --alpha; at width 1.0 from torchvision's ImageNet weights
    /// in .cache/weights, see scripts/fetch-pretrained, unless --no-pretrained; other widths from scratch
    /// unless --weights names a file), efficientnet-lite0 (ImageNet weights from .cache/weights unless
    /// --no-pretrained), or densenet121, densenet101 (the paper's teacher) or densenet32 (its student),
    /// from scratch unless --weights names a file (torchvision's densenet121-*.pth loads by name); from
    /// scratch, train every layer: --epochs 0,0,N.
    #[arg(long, default_value = "mobilenet-v2", value_parser = |s: &str| s.parse::<Arch>())]
    pub arch: Arch,
    /// MobileNetV2 width multiplier (0.35, 0.5, 0.75, 1.0).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f32,
    /// Square input size in pixels (a multiple of 32).
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Epochs of stages 1, 2 and 3 (0 skips a stage).
    #[arg(long, value_delimiter = ',', default_value = "5,5,5")]
    pub epochs: Vec<usize>,
    /// Peak learning rates of stages 1, 2 and 3.
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.0003,0.0001")]
    pub lr: Vec<f64>,
    /// Blocks (counted from the top) that stage 2 unfreezes.
    #[arg(long, default_value_t = 4)]
    pub unfreeze_top: usize,
    /// AdamW weight decay (weights of rank ≥ 2 only).
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Label smoothing ε (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// Accuracy required of results not flagged "refer for expert review"; the
    /// threshold that achieves it on the validation split goes into the model.
    #[arg(long, default_value_t = 0.95)]
    pub refer_target: f64,
    /// Weight the loss by inverse class frequency.
    #[arg(long)]
    pub class_weights: bool,
    /// Stop a stage after this many epochs without a better validation loss within
    /// that stage (a stage that unfreezes more layers often starts worse and then
    /// recovers); the best weights over all stages are what is exported.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// Seed for splits, initialisation, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the validation split alone (default: --seed): runs that differ only in --seed then share
    /// one split, so their spread is training noise, not a different validation set.
    #[arg(long)]
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Pretrained weights (.pth, zip or legacy, or .safetensors) with torchvision/lukemelas names.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Start from random weights even where ImageNet weights are available.
    #[arg(long)]
    pub no_pretrained: bool,
    /// Share of Training/ (per class) held out for validation.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// Drop validation/test images that duplicate a training image (the test split
    /// is always also evaluated on its deduplicated subset, without this).
    #[arg(long)]
    pub dedup: bool,
    /// Near-duplicate threshold: largest pHash distance (bits of 63) at which two
    /// images count as copies; chosen by looking at pairs (bench/leakage/).
    #[arg(long, default_value_t = crate::data::NEAR_THRESHOLD)]
    pub near_threshold: u32,
    /// Split validation from training image by image, letting near-duplicate clusters straddle the two.
    #[arg(long)]
    pub ungrouped: bool,
    /// Refuse a dataset folder whose files differ from the known manifest it resembles (default: warn).
    #[arg(long)]
    pub strict: bool,
    /// Train without augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Continue the run in --out from its last checkpoint (written at the end of every epoch), with the
    /// same flags; it then ends with the same weights as a run never interrupted. A run stopped before its
    /// first checkpoint starts again from the beginning.
    #[arg(long)]
    pub resume: bool,
    /// Replace the contents of an existing --out (without it, an existing run is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// What the data is, for the model's `mriscreen.trained_on` (default: the dataset folder's README title, else its name).
    #[arg(long)]
    pub trained_on: Option<String>,
    /// Use at most this many training images per class (quick runs).
    #[arg(long)]
    pub max_per_class: Option<usize>,
    /// Start from these weights instead of ImageNet: an ONNX model this trainer exported (its weights in any
    /// precision), a run folder (its best.safetensors) or a .safetensors file with candle parameter names.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Quantization-aware training: fine-tune every layer with BatchNorm frozen and folded, weights
    /// fake-quantized exactly as `mriscreen quantize` stores them (straight-through gradients), then export
    /// the quantized model. Needs --init and --epochs 0,0,N (stage 3 only).
    #[arg(long, value_enum)]
    pub qat: Option<QatBits>,
    /// Input channels per int4 scale for --qat int4 (as `mriscreen quantize --block`).
    #[arg(long, default_value_t = mriscreen::model::quant::DEFAULT_BLOCK)]
    pub qat_block: usize,
    /// Knowledge distillation (set by `mriscreen distill`; `None` for `train`).
    #[arg(skip)]
    #[serde(default)]
    pub distill: Option<distill::Distill>,
}

/// Precision of quantization-aware training.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QatBits {
    Int8,
    Int4,
}

impl Args {
    /// The architecture, with --alpha applied to MobileNetV2.
    pub fn arch(&self) -> Arch {
        self.arch.with_alpha(self.alpha)
    }

    pub fn augment(&self) -> Option<AugmentConfig> {
        (!self.no_augment).then(AugmentConfig::default)
    }

    /// The quantization scheme and precision of `--qat`, if set.
    pub fn qat_scheme(&self) -> Option<(mriscreen::model::Precision, mriscreen::model::quant::Scheme)> {
        use mriscreen::model::{quant::Scheme, Precision};
        self.qat.map(|q| match q {
            QatBits::Int8 => (Precision::Int8, Scheme::int8()),
            QatBits::Int4 => (Precision::Int4, Scheme::int4(self.qat_block)),
        })
    }
}

/// Metrics of one epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub stage: usize,
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Where a run is; saved inside every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Stage in progress (1-based) and epochs completed in it.
    pub stage: usize,
    pub epoch: usize,
    /// Epochs in this stage without a better validation loss than this stage's best.
    pub stale: usize,
    /// This stage's best validation loss so far.
    #[serde(default)]
    pub stage_best: Option<f64>,
    /// The best over all stages (its weights are in best.safetensors).
    pub best_val_loss: Option<f64>,
    pub best: Option<(usize, usize)>,
    /// Optimizer steps taken in this stage.
    pub steps: usize,
    pub history: Vec<EpochMetrics>,
}
