//! The trainer's model families (candle), one file each, built from the
//! library's stage tables ([`mriscreen::arch`]), with parameter paths equal
//! to the torchvision / lukemelas keys of pretrained files: MobileNetV2
//! (width α) and EfficientNet-Lite0. Each has `new(vb, &cfg)`, `features_t`
//! (the headless model: the last feature map, for transfer learning and
//! class-activation maps) and `forward_t(xs, train)`. The export names each
//! ONNX weight after the conv's parameter path (trainer/src/export.rs).

pub mod conv_act;
pub mod depthwise;
pub mod efficientnet_lite0;
pub mod fake_quant;
pub mod fused;
pub mod layers;
pub mod mobilenet_v2;
#[cfg(test)]
mod imagenet_check;

/// Helpers the custom ops' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Device, Tensor};

    /// A seeded uniform tensor.
    pub fn rand(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(mriscreen::rng::Rng::new(seed).vec(n, lo, hi), shape, &Device::Cpu).unwrap()
    }

    /// Largest absolute difference.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }
}

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// A model of any family.
#[derive(Debug)]
pub enum Model {
    MobileNetV2(mobilenet_v2::MobileNetV2),
    EfficientNetLite0(efficientnet_lite0::EfficientNetLite0),
}

pub use mriscreen::arch::Arch;

/// Whether parameter `name` of `arch` trains when blocks `from..` (and the
/// last conv and head) are unfrozen; `None` unfreezes everything.
pub fn trainable(arch: Arch, name: &str, from: Option<usize>) -> bool {
    let Some(from) = from else { return true };
    if name.starts_with(head_prefix(arch)) {
        return true;
    }
    let block = match arch {
        Arch::MobileNetV2 { .. } => name.strip_prefix("features.").and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok()).map(|i| i.wrapping_sub(1)),
        Arch::EfficientNetLite0 => {
            if name.starts_with("_conv_head.") || name.starts_with("_bn1.") {
                return true;
            }
            name.strip_prefix("_blocks.").and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok())
        }
    };
    // MobileNetV2's stem is features.0 (block index wraps to usize::MAX:
    // frozen unless everything trains) and its last conv features.18.
    match block {
        Some(usize::MAX) => false,
        Some(b) => b >= from,
        None => false,
    }
}

/// Parameter-path prefix of `arch`'s classifier.
pub fn head_prefix(arch: Arch) -> &'static str {
    match arch {
        Arch::MobileNetV2 { .. } => "classifier.",
        Arch::EfficientNetLite0 => "_fc.",
    }
}

impl Model {
    pub fn new(vb: VarBuilder, arch: Arch, classes: usize, seed: u64) -> Result<Self> {
        Ok(match arch {
            Arch::MobileNetV2 { alpha } => {
                let mut cfg = mobilenet_v2::Config::width(alpha, classes);
                cfg.seed = seed;
                Model::MobileNetV2(mobilenet_v2::MobileNetV2::new(vb, &cfg)?)
            }
            Arch::EfficientNetLite0 => {
                let mut cfg = efficientnet_lite0::Config::lite0(classes);
                cfg.seed = seed;
                Model::EfficientNetLite0(efficientnet_lite0::EfficientNetLite0::new(vb, &cfg)?)
            }
        })
    }

    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::MobileNetV2(m) => m.features_t(xs, train),
            Model::EfficientNetLite0(m) => m.features_t(xs, train),
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::MobileNetV2(m) => m.forward_t(xs, train),
            Model::EfficientNetLite0(m) => m.forward_t(xs, train),
        }
    }

    /// Number of inverted-residual / MBConv blocks.
    pub fn num_blocks(&self) -> usize {
        match self {
            Model::MobileNetV2(m) => m.features.blocks.len(),
            Model::EfficientNetLite0(m) => m.blocks.len(),
        }
    }

    /// The parts every family shares: stem, blocks, last conv, head.
    pub fn parts(&self) -> (&layers::ConvBn, &[layers::Block], &layers::ConvBn, &layers::Head) {
        match self {
            Model::MobileNetV2(m) => (&m.features.stem, &m.features.blocks, &m.features.last, &m.head),
            Model::EfficientNetLite0(m) => (&m.stem, &m.blocks, &m.last, &m.head),
        }
    }

    /// Logits with only blocks `from..` (and the last conv and head) in
    /// training mode: the frozen part runs in eval mode (BatchNorm uses its
    /// running statistics) and its output is detached, so no gradient is
    /// computed through it. `None` trains everything.
    pub fn forward_partial(&self, xs: &Tensor, from: Option<usize>) -> Result<Tensor> {
        let Some(from) = from else { return self.forward_t(xs, true) };
        let (stem, blocks, last, head) = self.parts();
        let mut ys = stem.forward_t(xs, false)?;
        for b in &blocks[..from.min(blocks.len())] {
            ys = b.forward_t(&ys, false)?;
        }
        ys = ys.detach();
        for b in &blocks[from.min(blocks.len())..] {
            ys = b.forward_t(&ys, true)?;
        }
        let ys = last.forward_t(&ys, true)?;
        head.forward_t(&layers::global_avg_pool(&ys)?, true)
    }

    /// Logits as the quantized export computes them (quantization-aware
    /// training): every BatchNorm frozen and folded, every weight
    /// fake-quantized with `scheme`, biases in float16; `train` only
    /// switches the head's dropout.
    pub fn forward_qat(&self, xs: &Tensor, scheme: mriscreen::model::quant::Scheme, train: bool) -> Result<Tensor> {
        let (stem, blocks, last, head) = self.parts();
        let mut ys = stem.forward_qat(xs, scheme)?;
        for b in blocks {
            ys = b.forward_qat(&ys, scheme)?;
        }
        let ys = last.forward_qat(&ys, scheme)?;
        head.forward_qat(&layers::global_avg_pool(&ys)?, scheme, train)
    }

    /// The classifier head alone, on pooled features `[N, C]`.
    pub fn head_t(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::MobileNetV2(m) => m.head.forward_t(pooled, train),
            Model::EfficientNetLite0(m) => m.head.forward_t(pooled, train),
        }
    }
}
