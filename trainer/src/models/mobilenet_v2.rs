//! MobileNetV2 in candle, as torchvision builds it, so a torchvision
//! `mobilenet_v2` state dict loads by name: `features.0` stem conv 3×3/2, the
//! inverted residual blocks of the library's stage table
//! ([`mriscreen::arch::mobilenet_v2`]) as `features.1..=17`, `features.18`
//! 1×1 conv to the last width, then dropout 0.2 and `classifier.1`. BN eps
//! 1e-5, momentum 0.1, ReLU6.

use super::layers::{global_avg_pool, Act, Block, ConvBn, ConvSpec, Head, Padding};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use mriscreen::arch::{mobilenet_v2, Arch, BlockSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Width multiplier α.
    pub alpha: f32,
    pub classes: usize,
    pub dropout: f32,
    /// Seed of the dropout mask.
    pub seed: u64,
}

impl Config {
    pub fn width(alpha: f32, classes: usize) -> Self {
        Config { alpha, classes, dropout: 0.2, seed: 0 }
    }

    pub fn arch(&self) -> Arch {
        Arch::MobileNetV2 { alpha: self.alpha }
    }
}

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// One inverted residual block: optional 1×1 expansion, 3×3 depthwise,
/// 1×1 linear projection, residual when shapes allow.
fn inverted_residual(vb: VarBuilder, block: &BlockSpec) -> Result<Block> {
    let (inp, out, hidden, stride) = (block.inp, block.out, block.hidden(), block.stride);
    let vb = vb.pp("conv");
    let spec = |inp, out, kernel, stride, groups, act| ConvSpec { inp, out, kernel, stride, groups, act, padding: Padding::Symmetric };
    let mut layers = Vec::new();
    let mut j = 0;
    if block.expand != 1 {
        layers.push(ConvBn::new(vb.pp("0").pp("0"), vb.pp("0").pp("1"), spec(inp, hidden, 1, 1, 1, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
        j = 1;
    }
    let (a, b) = (j.to_string(), (j + 1).to_string());
    layers.push(ConvBn::new(vb.pp(&a).pp("0"), vb.pp(&a).pp("1"), spec(hidden, hidden, block.kernel, stride, hidden, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    // torchvision names the projection conv.{j+1} and its BN conv.{j+2}.
    layers.push(ConvBn::new(vb.pp(&b), vb.pp((j + 2).to_string()), spec(hidden, out, 1, 1, 1, Act::None), BN_EPS, BN_MOMENTUM)?);
    Ok(Block { layers, residual: block.residual() })
}

/// The feature extractor (`features.*`), without the classifier.
#[derive(Debug, Clone)]
pub struct Features {
    pub stem: ConvBn,
    pub blocks: Vec<Block>,
    pub last: ConvBn,
}

#[derive(Debug)]
pub struct MobileNetV2 {
    pub features: Features,
    pub head: Head,
}

impl MobileNetV2 {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let f = vb.pp("features");
        let spec = |inp, out, kernel, stride| ConvSpec { inp, out, kernel, stride, groups: 1, act: Act::Relu6, padding: Padding::Symmetric };
        let arch = cfg.arch();
        let mut c = mobilenet_v2::stem_channels(cfg.alpha);
        let stem = ConvBn::new(f.pp("0").pp("0"), f.pp("0").pp("1"), spec(3, c, 3, 2), BN_EPS, BN_MOMENTUM)?;
        let mut blocks = Vec::new();
        for (i, block) in mobilenet_v2::blocks(cfg.alpha).iter().enumerate() {
            blocks.push(inverted_residual(f.pp((i + 1).to_string()), block)?);
            c = block.out;
        }
        let idx = (blocks.len() + 1).to_string();
        let last = ConvBn::new(f.pp(&idx).pp("0"), f.pp(&idx).pp("1"), spec(c, arch.last_channels(), 1, 1), BN_EPS, BN_MOMENTUM)?;
        let head = Head::new(vb.pp("classifier").pp("1"), arch.last_channels(), cfg.classes, cfg.dropout, cfg.seed)?;
        Ok(MobileNetV2 { features: Features { stem, blocks, last }, head })
    }

    /// The last feature map `[N, 1280·max(1,α), H/32, W/32]` (the headless model).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut ys = self.features.stem.forward_t(xs, train)?;
        for b in &self.features.blocks {
            ys = b.forward_t(&ys, train)?;
        }
        self.features.last.forward_t(&ys, train)
    }

    /// Logits `[N, classes]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.head.forward_t(&global_avg_pool(&self.features_t(xs, train)?)?, train)
    }
}
