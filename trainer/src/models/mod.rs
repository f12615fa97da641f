//! The trainer's model families (candle), one file each, built from the
//! library's stage tables ([`mriscreen::arch`]), with parameter paths equal
//! to the torchvision / lukemelas keys of pretrained files: MobileNetV2
//! (width α), EfficientNet-Lite0 and DenseNet-BC. Each has `new(vb, &cfg)`, `features_t`
//! (the headless model: the last feature map, for transfer learning and
//! class-activation maps) and `forward_t(xs, train)`. The export names each
//! ONNX weight after the conv's parameter path (trainer/src/export.rs).

pub mod conv_act;
pub mod densenet;
pub mod depthwise;
pub mod efficientnet_lite0;
pub mod fake_quant;
pub mod fused;
pub mod layers;
pub mod mobilenet_v2;
pub mod pool;
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
    DenseNet(densenet::DenseNet),
}

pub use mriscreen::arch::Arch;

/// Whether parameter `name` of `arch` trains when blocks `from..` (and the
/// last conv and head) are unfrozen; `None` unfreezes everything. DenseNet's
/// "blocks" are its dense blocks and transitions in order (see
/// [`Model::num_blocks`]) and its last layer `features.norm5`.
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
        Arch::DenseNet(_) => {
            if name.starts_with("features.norm5.") {
                return true;
            }
            if name.starts_with("features.conv0.") || name.starts_with("features.norm0.") {
                return false;
            }
            let unit = |prefix: &str, offset: usize| {
                name.strip_prefix(prefix).and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok()).map(|i| 2 * (i - 1) + offset)
            };
            unit("features.denseblock", 0).or_else(|| unit("features.transition", 1))
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
        Arch::DenseNet(_) => "classifier.",
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
            Arch::DenseNet(net) => Model::DenseNet(densenet::DenseNet::new(vb, &densenet::Config { net, classes, seed })?),
        })
    }

    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::MobileNetV2(m) => m.features_t(xs, train),
            Model::EfficientNetLite0(m) => m.features_t(xs, train),
            Model::DenseNet(m) => m.features_t(xs, train),
        }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::MobileNetV2(m) => m.forward_t(xs, train),
            Model::EfficientNetLite0(m) => m.forward_t(xs, train),
            Model::DenseNet(m) => m.forward_t(xs, train),
        }
    }

    /// Number of blocks the stages unfreeze from the top: inverted-residual
    /// / MBConv blocks, or DenseNet's dense blocks and transitions.
    pub fn num_blocks(&self) -> usize {
        match self {
            Model::MobileNetV2(m) => m.features.blocks.len(),
            Model::EfficientNetLite0(m) => m.blocks.len(),
            Model::DenseNet(m) => m.units.len(),
        }
    }

    /// The parts the inverted-residual families share: stem, blocks, last
    /// conv, head; `None` for DenseNet.
    pub fn parts(&self) -> Option<(&layers::ConvBn, &[layers::Block], &layers::ConvBn, &layers::Head)> {
        match self {
            Model::MobileNetV2(m) => Some((&m.features.stem, &m.features.blocks, &m.features.last, &m.head)),
            Model::EfficientNetLite0(m) => Some((&m.stem, &m.blocks, &m.last, &m.head)),
            Model::DenseNet(_) => None,
        }
    }

    /// The classifier head.
    pub fn head(&self) -> &layers::Head {
        match self {
            Model::MobileNetV2(m) => &m.head,
            Model::EfficientNetLite0(m) => &m.head,
            Model::DenseNet(m) => &m.head,
        }
    }

    /// Logits with only blocks `from..` (and the last conv and head) in
    /// training mode: the frozen part runs in eval mode (BatchNorm uses its
    /// running statistics) and its output is detached, so no gradient is
    /// computed through it. `None` trains everything.
    pub fn forward_partial(&self, xs: &Tensor, from: Option<usize>) -> Result<Tensor> {
        let Some(from) = from else { return self.forward_t(xs, true) };
        let (stem, blocks, last, head) = match (self, self.parts()) {
            (Model::DenseNet(m), _) => return m.forward_partial(xs, from),
            (_, Some(parts)) => parts,
            (_, None) => unreachable!("every family but DenseNet has the common parts"),
        };
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
        let (stem, blocks, last, head) = match (self, self.parts()) {
            (Model::DenseNet(m), _) => return m.forward_qat(xs, scheme, train),
            (_, Some(parts)) => parts,
            (_, None) => unreachable!("every family but DenseNet has the common parts"),
        };
        let mut ys = stem.forward_qat(xs, scheme)?;
        for b in blocks {
            ys = b.forward_qat(&ys, scheme)?;
        }
        let ys = last.forward_qat(&ys, scheme)?;
        head.forward_qat(&layers::global_avg_pool(&ys)?, scheme, train)
    }

    /// The classifier head alone, on pooled features `[N, C]`.
    pub fn head_t(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        self.head().forward_t(pooled, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The freeze rule (which parameters the optimizer gets) and the partial
    /// forward pass (which parameters receive a gradient) agree for every
    /// family: no trained parameter is frozen in the graph, none the graph
    /// trains is left out of the optimizer.
    #[test]
    fn the_freeze_rule_matches_the_partial_forward_pass() {
        for arch in [Arch::MobileNetV2 { alpha: 0.35 }, Arch::EfficientNetLite0, Arch::DenseNet(mriscreen::arch::DenseNet::D32)] {
            let varmap = VarMap::new();
            let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), arch, 4, 0).unwrap();
            let from = model.num_blocks() - 2;
            let x = testing::rand(&[2, 3, 64, 64], 1, -1.0, 1.0);
            let grads = model.forward_partial(&x, Some(from)).unwrap().sum_all().unwrap().backward().unwrap();
            let data = varmap.data().lock().unwrap();
            for (name, var) in data.iter().filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var")) {
                let has_gradient = grads.get(var.as_tensor()).is_some();
                assert_eq!(trainable(arch, name, Some(from)), has_gradient, "{arch}: {name}");
                assert!(trainable(arch, name, None), "{arch}: {name}");
            }
            assert!(data.keys().any(|n| !trainable(arch, n, Some(from))), "{arch}: something stays frozen");
        }
    }
}
