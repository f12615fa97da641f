//! MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
//! Bottlenecks", CVPR 2018) as torchvision builds it, so a torchvision
//! `mobilenet_v2` state dict loads by name: `features.0` stem conv 3×3/2,
//! inverted residual blocks (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2)
//! (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1) with channels scaled by α and
//! rounded to multiples of 8, `features.18` 1×1 conv to 1280·max(1, α), then
//! dropout 0.2 and `classifier.1`. BN eps 1e-5, momentum 0.1, ReLU6.

use super::layers::{global_avg_pool, Act, Block, ConvBn, ConvSpec, Head, Padding};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use mriscreen::model::random::make_divisible;

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

    /// Channels of the last feature map.
    pub fn last_channels(&self) -> usize {
        make_divisible(1280.0 * self.alpha.max(1.0), 8)
    }
}

const SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// One inverted residual block: optional 1×1 expansion, 3×3 depthwise,
/// 1×1 linear projection, residual when shapes allow.
fn inverted_residual(vb: VarBuilder, inp: usize, out: usize, stride: usize, t: usize) -> Result<Block> {
    let hidden = inp * t;
    let vb = vb.pp("conv");
    let spec = |inp, out, kernel, stride, groups, act| ConvSpec { inp, out, kernel, stride, groups, act, padding: Padding::Symmetric };
    let mut layers = Vec::new();
    let mut j = 0;
    if t != 1 {
        layers.push(ConvBn::new(vb.pp("0").pp("0"), vb.pp("0").pp("1"), spec(inp, hidden, 1, 1, 1, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
        j = 1;
    }
    let (a, b) = (j.to_string(), (j + 1).to_string());
    layers.push(ConvBn::new(vb.pp(&a).pp("0"), vb.pp(&a).pp("1"), spec(hidden, hidden, 3, stride, hidden, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    // torchvision names the projection conv.{j+1} and its BN conv.{j+2}.
    layers.push(ConvBn::new(vb.pp(&b), vb.pp((j + 2).to_string()), spec(hidden, out, 1, 1, 1, Act::None), BN_EPS, BN_MOMENTUM)?);
    Ok(Block { layers, residual: stride == 1 && inp == out })
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
        let mut c = make_divisible(32.0 * cfg.alpha, 8);
        let stem = ConvBn::new(f.pp("0").pp("0"), f.pp("0").pp("1"), spec(3, c, 3, 2), BN_EPS, BN_MOMENTUM)?;
        let mut blocks = Vec::new();
        for (t, ch, n, s) in SETTINGS {
            let out = make_divisible(ch as f32 * cfg.alpha, 8);
            for i in 0..n {
                let idx = blocks.len() + 1;
                blocks.push(inverted_residual(f.pp(idx.to_string()), c, out, if i == 0 { s } else { 1 }, t)?);
                c = out;
            }
        }
        let idx = (blocks.len() + 1).to_string();
        let last = ConvBn::new(f.pp(&idx).pp("0"), f.pp(&idx).pp("1"), spec(c, cfg.last_channels(), 1, 1), BN_EPS, BN_MOMENTUM)?;
        let head = Head::new(vb.pp("classifier").pp("1"), cfg.last_channels(), cfg.classes, cfg.dropout, cfg.seed)?;
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
