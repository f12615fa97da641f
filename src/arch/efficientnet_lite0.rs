//! EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
//! CNNs", ICML 2019; the Lite variants for mobile drop squeeze-and-excitation,
//! use ReLU6 and keep the stem and head widths fixed): a 32-channel stem, the
//! MBConv stages of [`STAGES`], a 1×1 conv to 1280 channels.

use super::BlockSpec;

/// One stage: depthwise kernel, first stride, expansion, channels, repeats.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
    pub channels: usize,
    pub repeats: usize,
}

const fn stage(kernel: usize, stride: usize, expand: usize, channels: usize, repeats: usize) -> Stage {
    Stage { kernel, stride, expand, channels, repeats }
}

pub const STAGES: [Stage; 7] =
    [stage(3, 1, 1, 16, 1), stage(3, 2, 6, 24, 2), stage(5, 2, 6, 40, 2), stage(3, 2, 6, 80, 3), stage(5, 1, 6, 112, 3), stage(5, 2, 6, 192, 4), stage(3, 1, 6, 320, 1)];

pub const STEM_CHANNELS: usize = 32;
pub const LAST_CHANNELS: usize = 1280;

/// The 16 blocks.
pub fn blocks() -> Vec<BlockSpec> {
    let mut c = STEM_CHANNELS;
    let mut out = Vec::new();
    for s in STAGES {
        for i in 0..s.repeats {
            out.push(BlockSpec { inp: c, out: s.channels, kernel: s.kernel, stride: if i == 0 { s.stride } else { 1 }, expand: s.expand });
            c = s.channels;
        }
    }
    out
}
