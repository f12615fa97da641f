//! The architectures we train and generate, each defined once: a stage table
//! in the architecture's own file (expanded into [`BlockSpec`]s for the
//! inverted-residual families, a [`densenet::Config`] for DenseNet) that both
//! the random reference ONNX graphs (`model::random`) and the trainer's
//! candle models are built from. Layer names, padding and normalisation
//! details belong to each builder; the shapes come from here.

pub mod densenet;
pub mod efficientnet_lite0;
pub mod mobilenet_v2;

pub use densenet::DenseNet;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A model family and its size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// MobileNetV2 with width multiplier `alpha`.
    MobileNetV2 { alpha: f32 },
    EfficientNetLite0,
    /// A DenseNet-BC of one of the named configurations.
    DenseNet(DenseNet),
}

/// One inverted-residual (MobileNetV2) or MBConv (EfficientNet-Lite) block:
/// optional 1×1 expansion to `inp · expand` channels, a `kernel`×`kernel`
/// depthwise conv with `stride`, a 1×1 linear projection to `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub inp: usize,
    pub out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
}

impl BlockSpec {
    pub fn hidden(&self) -> usize {
        self.inp * self.expand
    }

    /// Whether the block adds its input to its output.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.inp == self.out
    }
}

impl Arch {
    /// The `mriscreen.arch` string, e.g. `mobilenet_v2_1.0`.
    pub fn name(&self) -> String {
        match self {
            Arch::MobileNetV2 { alpha } => format!("mobilenet_v2_{alpha:?}"),
            Arch::EfficientNetLite0 => "efficientnet_lite0".into(),
            Arch::DenseNet(d) => d.name().into(),
        }
    }

    /// Channels of the last feature map (the `features` output).
    pub fn last_channels(&self) -> usize {
        match self {
            Arch::MobileNetV2 { alpha } => mobilenet_v2::last_channels(*alpha),
            Arch::EfficientNetLite0 => efficientnet_lite0::LAST_CHANNELS,
            Arch::DenseNet(d) => d.config().last_channels(),
        }
    }

    /// The same family with width `alpha` (MobileNetV2 only; others are fixed).
    pub fn with_alpha(self, alpha: f32) -> Self {
        match self {
            Arch::MobileNetV2 { .. } => Arch::MobileNetV2 { alpha },
            other => other,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Arch {
    type Err = String;

    /// `mobilenet-v2` (width 1.0; the CLI's `--alpha` sets another),
    /// `efficientnet-lite0`, `densenet121`, `densenet101`, `densenet32`, or a
    /// `mriscreen.arch` name such as `mobilenet_v2_0.35`.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        match norm.as_str() {
            "mobilenet_v2" => return Ok(Arch::MobileNetV2 { alpha: 1.0 }),
            "efficientnet_lite0" => return Ok(Arch::EfficientNetLite0),
            _ => {}
        }
        if let Some(d) = DenseNet::ALL.into_iter().find(|d| d.name() == norm.replace('_', "")) {
            return Ok(Arch::DenseNet(d));
        }
        norm.strip_prefix("mobilenet_v2_")
            .and_then(|a| a.parse::<f32>().ok())
            .filter(|a| a.is_finite() && *a > 0.0 && *a <= 4.0)
            .map(|alpha| Arch::MobileNetV2 { alpha })
            .ok_or_else(|| format!("unknown architecture {s:?}; expected mobilenet-v2, efficientnet-lite0, densenet121, densenet101, densenet32 or e.g. mobilenet_v2_0.35"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for arch in [Arch::MobileNetV2 { alpha: 1.0 }, Arch::MobileNetV2 { alpha: 0.35 }, Arch::EfficientNetLite0, Arch::DenseNet(DenseNet::D101), Arch::DenseNet(DenseNet::D32)] {
            assert_eq!(arch.name().parse::<Arch>(), Ok(arch));
        }
        assert_eq!("DenseNet-121".parse::<Arch>(), Ok(Arch::DenseNet(DenseNet::D121)));
        assert_eq!("mobilenet-v2".parse::<Arch>(), Ok(Arch::MobileNetV2 { alpha: 1.0 }));
        assert_eq!("EfficientNet-Lite0".parse::<Arch>(), Ok(Arch::EfficientNetLite0));
        for bad in ["resnet50", "mobilenet_v2_x", "mobilenet_v2_0", "densenet", "densenet33", ""] {
            assert!(bad.parse::<Arch>().is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_chain_their_channels() {
        let families = [
            (mobilenet_v2::stem_channels(0.35), mobilenet_v2::blocks(0.35)),
            (mobilenet_v2::stem_channels(1.0), mobilenet_v2::blocks(1.0)),
            (efficientnet_lite0::STEM_CHANNELS, efficientnet_lite0::blocks()),
        ];
        for (stem, blocks) in &families {
            let mut c = *stem;
            for b in blocks {
                assert_eq!(b.inp, c);
                c = b.out;
            }
            // Stride 2 in the stem and four stages: 1/32 of the input.
            assert_eq!(blocks.iter().filter(|b| b.stride == 2).count(), 4);
        }
        assert_eq!(mobilenet_v2::blocks(1.0).len(), 17);
        assert_eq!(efficientnet_lite0::blocks().len(), 16);
    }
}
