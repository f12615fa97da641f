//! DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks",
//! CVPR 2017) as torchvision builds it: a 7×7/2 stem conv to `init_features`
//! channels, BatchNorm, ReLU and a 3×3/2 max pool; dense blocks whose layers
//! are pre-activation BN → ReLU → 1×1 conv (bottleneck, `bn_size · growth`
//! channels) → BN → ReLU → 3×3 conv (`growth` channels), each reading the
//! concatenation of the block's input and every earlier layer's output;
//! between blocks a transition BN → ReLU → 1×1 conv to half the channels
//! (compression 0.5) → 2×2 average pool; a final BN → ReLU (the `features`
//! map) and a linear classifier. Every conv is bias-free.
//!
//! Depth counts the weighted layers: 1 stem conv + 2 per dense layer + 1 per
//! transition + the classifier = 2·Σblocks + (blocks) + 1.
//!
//! | config | blocks | growth | stem | depth | parameters (4 classes) | last channels |
//! |---|---|---|---|---|---|---|
//! | `densenet121` (torchvision) | 6-12-24-16 | 32 | 64 | 121 | 6,957,956 (7,978,856 with 1,000 classes) | 1024 |
//! | `densenet101` (the paper's teacher) | 6-12-18-12 | 32 | 64 | 101 | 5,054,852 | 800 |
//! | `densenet32` (the paper's student) | 4-6-4 | 20 | 40 | 32 | 351,264 | 170 |
//!
//! The paper names its teacher "DenseNet-101" without a block table; 6-12-18-12
//! is the torchvision layout with the last two blocks shortened to reach 101
//! layers. The student has three blocks (two transitions), so 2·14 + 3 + 1 =
//! 32 layers; growth 20 is the largest multiple of 4 whose int8 file stays
//! under 0.45 MB (growth 24 would hold ~0.50 M weights). Its last feature map
//! is 1/16 of the input (one transition fewer than the four-block models).

use serde::{Deserialize, Serialize};

/// The named DenseNet configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenseNet {
    #[serde(rename = "densenet121")]
    D121,
    #[serde(rename = "densenet101")]
    D101,
    #[serde(rename = "densenet32")]
    D32,
}

/// A DenseNet-BC's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Layers per dense block.
    pub blocks: Vec<usize>,
    /// Channels each dense layer adds (k).
    pub growth: usize,
    /// Channels out of the stem conv.
    pub init_features: usize,
    /// Bottleneck width as a multiple of `growth` (4 in DenseNet-BC).
    pub bn_size: usize,
}

/// One dense layer: its input channels (the concatenation it reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    pub inp: usize,
    pub bottleneck: usize,
    pub growth: usize,
}

/// One transition: channels in and out (half, rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionSpec {
    pub inp: usize,
    pub out: usize,
}

impl DenseNet {
    pub const ALL: [DenseNet; 3] = [DenseNet::D121, DenseNet::D101, DenseNet::D32];

    pub fn name(self) -> &'static str {
        match self {
            DenseNet::D121 => "densenet121",
            DenseNet::D101 => "densenet101",
            DenseNet::D32 => "densenet32",
        }
    }

    pub fn config(self) -> Config {
        let (blocks, growth, init_features) = match self {
            DenseNet::D121 => (vec![6, 12, 24, 16], 32, 64),
            DenseNet::D101 => (vec![6, 12, 18, 12], 32, 64),
            DenseNet::D32 => (vec![4, 6, 4], 20, 40),
        };
        Config { blocks, growth, init_features, bn_size: 4 }
    }
}

impl Config {
    /// A DenseNet-BC with a stem of twice the growth rate (as the paper's
    /// ImageNet models have): for test graphs.
    pub fn custom(blocks: &[usize], growth: usize) -> Self {
        Config { blocks: blocks.to_vec(), growth, init_features: 2 * growth, bn_size: 4 }
    }

    /// The named configuration's name (`densenet32`), or the shape
    /// (`densenet_6-8_k12`) for another.
    pub fn name(&self) -> String {
        match DenseNet::ALL.into_iter().find(|d| d.config() == *self) {
            Some(d) => d.name().into(),
            None => format!("densenet_{}_k{}", self.blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("-"), self.growth),
        }
    }

    /// Side of the last feature map for a square input of side `input`:
    /// the stem conv and max pool each give ⌈s/2⌉, a transition's 2×2
    /// average pool ⌊s/2⌋.
    pub fn feature_size(&self, input: usize) -> usize {
        let s = input.div_ceil(2).div_ceil(2);
        s >> (self.blocks.len() - 1)
    }

    /// Weighted layers: stem conv, two convs per dense layer, one per
    /// transition, the classifier.
    pub fn depth(&self) -> usize {
        2 * self.blocks.iter().sum::<usize>() + self.blocks.len() + 1
    }

    /// The dense layers of block `b`.
    pub fn layers(&self, b: usize) -> Vec<LayerSpec> {
        let c = self.block_input(b);
        (0..self.blocks[b]).map(|l| LayerSpec { inp: c + l * self.growth, bottleneck: self.bn_size * self.growth, growth: self.growth }).collect()
    }

    /// Channels into block `b`.
    pub fn block_input(&self, b: usize) -> usize {
        let mut c = self.init_features;
        for &n in &self.blocks[..b] {
            c = (c + n * self.growth) / 2;
        }
        c
    }

    /// The transition after block `b`, if one follows it.
    pub fn transition(&self, b: usize) -> Option<TransitionSpec> {
        (b + 1 < self.blocks.len()).then(|| {
            let inp = self.block_input(b) + self.blocks[b] * self.growth;
            TransitionSpec { inp, out: inp / 2 }
        })
    }

    /// Channels of the last feature map.
    pub fn last_channels(&self) -> usize {
        let b = self.blocks.len() - 1;
        self.block_input(b) + self.blocks[b] * self.growth
    }

    /// How much smaller the last feature map is than the input: 4 for the
    /// stem (conv and max pool), 2 per transition.
    pub fn reduction(&self) -> usize {
        4 << (self.blocks.len() - 1)
    }

    /// Trainable parameters (convs, BatchNorm γ and β, the classifier), as
    /// PyTorch counts them.
    pub fn parameters(&self, classes: usize) -> usize {
        let bn = |c: usize| 2 * c;
        let mut p = 3 * self.init_features * 49 + bn(self.init_features);
        for b in 0..self.blocks.len() {
            for l in self.layers(b) {
                p += bn(l.inp) + l.inp * l.bottleneck + bn(l.bottleneck) + l.bottleneck * l.growth * 9;
            }
            if let Some(t) = self.transition(b) {
                p += bn(t.inp) + t.inp * t.out;
            }
        }
        let c = self.last_channels();
        p + bn(c) + c * classes + classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_in_the_docs_is_what_the_configs_give() {
        let rows: Vec<(usize, usize, usize)> = DenseNet::ALL.iter().map(|d| {
            let c = d.config();
            (c.depth(), c.parameters(4), c.last_channels())
        }).collect();
        assert_eq!(rows, [(121, 6_957_956, 1024), (101, 5_054_852, 800), (32, 351_264, 170)]);
        // torchvision's densenet121 with its ImageNet head.
        assert_eq!(DenseNet::D121.config().parameters(1000), 7_978_856);
    }

    #[test]
    fn channels_chain_through_blocks_and_transitions() {
        for d in DenseNet::ALL {
            let c = d.config();
            for b in 0..c.blocks.len() {
                let layers = c.layers(b);
                assert_eq!(layers[0].inp, c.block_input(b), "{}", d.name());
                let out = layers.last().unwrap().inp + c.growth;
                match c.transition(b) {
                    Some(t) => {
                        assert_eq!(t.inp, out);
                        assert_eq!(c.block_input(b + 1), t.out);
                    }
                    None => assert_eq!(c.last_channels(), out),
                }
            }
        }
        assert_eq!(DenseNet::D121.config().reduction(), 32);
        assert_eq!(DenseNet::D121.config().feature_size(224), 7);
        assert_eq!(DenseNet::D32.config().feature_size(224), 14);
        assert_eq!(DenseNet::D32.config().feature_size(97), 6);
        assert_eq!(DenseNet::D32.config().reduction(), 16);
    }
}
