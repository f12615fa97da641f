//! MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
//! Bottlenecks", CVPR 2018) as torchvision defines it: a 32·α-channel stem,
//! the inverted-residual stages of [`STAGES`] with channels scaled by α and
//! rounded by [`make_divisible`], and a 1×1 conv to 1280·max(1, α).

use super::BlockSpec;

/// One stage: expansion t, channels c, repeats n, first stride s.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    pub expand: usize,
    pub channels: usize,
    pub repeats: usize,
    pub stride: usize,
}

const fn stage(expand: usize, channels: usize, repeats: usize, stride: usize) -> Stage {
    Stage { expand, channels, repeats, stride }
}

/// (t, c, n, s) of the paper's Table 2.
pub const STAGES: [Stage; 7] =
    [stage(1, 16, 1, 1), stage(6, 24, 2, 2), stage(6, 32, 3, 2), stage(6, 64, 4, 2), stage(6, 96, 3, 1), stage(6, 160, 3, 2), stage(6, 320, 1, 1)];

/// torchvision's `_make_divisible`: `v` rounded to a multiple of `divisor`,
/// never below 90 % of `v`.
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let mut n = ((v + d / 2.0) / d).floor() as usize * divisor;
    n = n.max(divisor);
    if (n as f32) < 0.9 * v {
        n += divisor;
    }
    n
}

pub fn stem_channels(alpha: f32) -> usize {
    make_divisible(32.0 * alpha, 8)
}

pub fn last_channels(alpha: f32) -> usize {
    make_divisible(1280.0 * alpha.max(1.0), 8)
}

/// The 17 blocks at width `alpha` (3×3 depthwise everywhere).
pub fn blocks(alpha: f32) -> Vec<BlockSpec> {
    let mut c = stem_channels(alpha);
    let mut out = Vec::new();
    for s in STAGES {
        let channels = make_divisible(s.channels as f32 * alpha, 8);
        for i in 0..s.repeats {
            out.push(BlockSpec { inp: c, out: channels, kernel: 3, stride: if i == 0 { s.stride } else { 1 }, expand: s.expand });
            c = channels;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // torchvision: _make_divisible(32 * 0.35, 8) == 16, (16*0.35) == 8, (1280*1.0) == 1280
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(16.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(96.0 * 0.75, 8), 72);
        assert_eq!(make_divisible(1280.0, 8), 1280);
    }
}
