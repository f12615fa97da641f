//! Randomly initialised reference graphs, deterministic from a seed: the
//! untrained placeholder model, test fixtures, and latency benchmarks (random
//! weights time exactly like trained ones).
//!
//! [`mobilenet_v2`] and [`efficientnet_lite0`] take their shapes from
//! [`crate::arch`] (the one stage table per architecture). MobileNetV2 is
//! Conv → BatchNormalization → Clip(0, 6) everywhere, with node/initializer
//! names following torchvision's parameter keys (`features.3.conv.1.0.weight`).

use super::builder::{ConvAttrs, Dim, GraphBuilder};
use super::{Description, Precision};
use crate::preprocess::{InputSpec, Intensity, Resize};
use crate::arch::{Arch, BlockSpec};
use crate::rng::Rng;

/// Options shared by the random graphs.
#[derive(Debug, Clone)]
pub struct RandomNet {
    pub classes: Vec<String>,
    pub input_size: usize,
    pub seed: u64,
    pub precision: Precision,
    /// Value of `mriscreen.trained_on`.
    pub trained_on: String,
}

impl RandomNet {
    pub fn new(classes: &[&str], input_size: usize, seed: u64) -> Self {
        RandomNet {
            classes: classes.iter().map(|s| s.to_string()).collect(),
            input_size,
            seed,
            precision: Precision::Fp32,
            trained_on: "nothing: random weights (untrained placeholder)".into(),
        }
    }
}

/// Builds layers with He-uniform random weights into a [`GraphBuilder`].
pub struct Layers {
    pub b: GraphBuilder,
    pub rng: Rng,
}

impl Layers {
    pub fn new(name: &str, opts: &RandomNet) -> Self {
        Layers { b: GraphBuilder::new(name).with_precision(opts.precision), rng: Rng::new(opts.seed) }
    }

    /// A conv weight `[out, in/group, k, k]`, He-uniform.
    pub fn conv_weight(&mut self, name: &str, out: usize, inp: usize, k: usize) -> String {
        let fan_in = (inp * k * k) as f32;
        let a = (6.0 / fan_in).sqrt();
        let w = self.rng.vec(out * inp * k * k, -a, a);
        self.b.weight(name, &[out, inp, k, k], &w)
    }

    /// BatchNormalization with random but plausible statistics.
    pub fn batch_norm(&mut self, x: &str, prefix: &str, c: usize) -> String {
        let gamma = self.rng.vec(c, 0.5, 1.5);
        let beta = self.rng.vec(c, -0.1, 0.1);
        let mean = self.rng.vec(c, -0.1, 0.1);
        let var = self.rng.vec(c, 0.5, 1.5);
        let g = self.b.constant(&format!("{prefix}.weight"), &[c], &gamma);
        let bt = self.b.constant(&format!("{prefix}.bias"), &[c], &beta);
        let m = self.b.constant(&format!("{prefix}.running_mean"), &[c], &mean);
        let v = self.b.constant(&format!("{prefix}.running_var"), &[c], &var);
        self.b.batch_norm(x, &g, &bt, &m, &v, 1e-5)
    }

    /// Conv (no bias) → BN → optional ReLU6, torchvision's `Conv2dNormActivation`.
    pub fn conv_bn(&mut self, x: &str, prefix: &str, inp: usize, out: usize, k: usize, stride: usize, group: usize, relu6: bool) -> String {
        let w = self.conv_weight(&format!("{prefix}.0.weight"), out, inp / group, k);
        let pad = (k as i64 - 1) / 2;
        let y = self.b.conv(x, &w, None, k as i64, ConvAttrs::grouped(stride as i64, pad, group as i64));
        let y = self.batch_norm(&y, &format!("{prefix}.1"), out);
        if relu6 { self.b.clip(&y, 0.0, 6.0) } else { y }
    }

    /// GlobalAveragePool → Flatten → Gemm (PyTorch Linear layout, transB=1)
    /// named `logits`; weights small enough that logits stay O(1).
    pub fn classifier(&mut self, features: &str, channels: usize, classes: usize, name: &str) -> String {
        let p = self.b.global_average_pool(features);
        let f = self.b.flatten(&p);
        let a = 1.0 / (channels as f32).sqrt();
        let w = self.rng.vec(classes * channels, -a, a);
        let bias = self.rng.vec(classes, -0.1, 0.1);
        let w = self.b.weight(&format!("{name}.weight"), &[classes, channels], &w);
        let bias = self.b.constant(&format!("{name}.bias"), &[classes], &bias);
        self.b.gemm(&f, &w, &bias, true);
        self.b.rename_last_output("logits")
    }

    /// Declares the contract's inputs/outputs and metadata and encodes the model.
    pub fn finish(mut self, opts: &RandomNet, arch: &str, features: Option<(usize, usize)>) -> Vec<u8> {
        let n = opts.classes.len() as i64;
        self.b.output("logits", &[1.into(), n.into()]);
        if let Some((k, hw)) = features {
            self.b.output("features", &[1.into(), (k as i64).into(), (hw as i64).into(), (hw as i64).into()]);
        }
        let input = InputSpec {
            width: opts.input_size,
            height: opts.input_size,
            mean: [0.5; 3],
            std: [0.25; 3],
            resize: Resize::Letterbox,
            intensity: Intensity::Robust,
            ..InputSpec::default()
        };
        self.b.describe(&Description {
            arch: Some(arch.to_string()),
            precision: opts.precision,
            trained_on: Some(opts.trained_on.clone()),
            ..Description::new(opts.classes.clone(), input)
        });
        self.b.to_bytes()
    }
}

/// A random MobileNetV2 with width multiplier `alpha` (see the module docs;
/// shapes from [`crate::arch::mobilenet_v2`]).
pub fn mobilenet_v2(alpha: f32, opts: &RandomNet) -> Vec<u8> {
    let arch = Arch::MobileNetV2 { alpha };
    let mut l = Layers::new("mobilenet_v2", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let stem = crate::arch::mobilenet_v2::stem_channels(alpha);
    let mut y = l.conv_bn(&x, "features.0", 3, stem, 3, 2, 1, true);
    let blocks = crate::arch::mobilenet_v2::blocks(alpha);
    for (i, block) in blocks.iter().enumerate() {
        y = inverted_residual(&mut l, &y, i + 1, block);
    }
    let (c, last) = (blocks.last().map_or(stem, |b| b.out), arch.last_channels());
    l.conv_bn(&y, &format!("features.{}", blocks.len() + 1), c, last, 1, 1, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, last, opts.classes.len(), "classifier.1");
    let hw = (opts.input_size + 31) / 32;
    l.finish(opts, &arch.name(), Some((last, hw)))
}

fn inverted_residual(l: &mut Layers, x: &str, idx: usize, block: &BlockSpec) -> String {
    let (inp, out, hidden) = (block.inp, block.out, block.hidden());
    let p = format!("features.{idx}.conv");
    let mut y = x.to_string();
    let mut j = 0;
    if block.expand != 1 {
        y = l.conv_bn(&y, &format!("{p}.{j}"), inp, hidden, 1, 1, 1, true);
        j += 1;
    }
    y = l.conv_bn(&y, &format!("{p}.{j}"), hidden, hidden, block.kernel, block.stride, hidden, true);
    // The projection is a bare conv + BN (linear bottleneck), torchvision
    // names them conv.{j+1}.weight and conv.{j+2}.*.
    let w = l.conv_weight(&format!("{p}.{}.weight", j + 1), out, hidden, 1);
    y = l.b.conv(&y, &w, None, 1, ConvAttrs::new(1, 0));
    y = l.batch_norm(&y, &format!("{p}.{}", j + 2), out);
    if block.residual() {
        y = l.b.add(x, &y);
    }
    y
}

/// A random EfficientNet-Lite0 (shapes from [`crate::arch::efficientnet_lite0`]),
/// with symmetric padding k/2 (the trained models use TensorFlow's "SAME").
pub fn efficientnet_lite0(opts: &RandomNet) -> Vec<u8> {
    let arch = Arch::EfficientNetLite0;
    let mut l = Layers::new("efficientnet_lite0", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let stem = crate::arch::efficientnet_lite0::STEM_CHANNELS;
    let mut y = l.conv_bn(&x, "stem", 3, stem, 3, 2, 1, true);
    let blocks = crate::arch::efficientnet_lite0::blocks();
    for (i, block) in blocks.iter().enumerate() {
        let p = format!("blocks.{i}");
        let mut z = y.clone();
        if block.expand != 1 {
            z = l.conv_bn(&z, &format!("{p}.conv_pw"), block.inp, block.hidden(), 1, 1, 1, true);
        }
        z = l.conv_bn(&z, &format!("{p}.conv_dw"), block.hidden(), block.hidden(), block.kernel, block.stride, block.hidden(), true);
        z = l.conv_bn(&z, &format!("{p}.conv_pwl"), block.hidden(), block.out, 1, 1, 1, false);
        y = if block.residual() { l.b.add(&y, &z) } else { z };
    }
    let (c, last) = (blocks.last().map_or(stem, |b| b.out), arch.last_channels());
    l.conv_bn(&y, "conv_head", c, last, 1, 1, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, last, opts.classes.len(), "classifier");
    let hw = opts.input_size.div_ceil(32);
    l.finish(opts, &arch.name(), Some((last, hw)))
}

/// A random DenseNet-BC of shape `cfg` ([`crate::arch::densenet`]) in
/// torchvision's layout and names: stem conv 7×7/2 + BN + ReLU + max pool
/// 3×3/2, dense blocks whose layers are BN → ReLU → 1×1 conv → BN → ReLU →
/// 3×3 conv, every layer reading the channel-concatenation of all earlier
/// outputs (bias-free convs, many-input Concats), transitions BN → ReLU →
/// 1×1 conv → 2×2 average pool, and a final BN → ReLU as the `features` output.
pub fn densenet(cfg: &crate::arch::densenet::Config, opts: &RandomNet) -> Vec<u8> {
    let mut l = Layers::new("densenet", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let w = l.conv_weight("features.conv0.weight", cfg.init_features, 3, 7);
    let y = l.b.conv(&x, &w, None, 7, ConvAttrs::new(2, 3));
    let y = l.batch_norm(&y, "features.norm0", cfg.init_features);
    let y = l.b.relu(&y);
    let mut y = l.b.max_pool(&y, 3, 2, 1);
    for bi in 0..cfg.blocks.len() {
        let mut feats = vec![y.clone()];
        for (li, spec) in cfg.layers(bi).iter().enumerate() {
            let p = format!("features.denseblock{}.denselayer{}", bi + 1, li + 1);
            let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
            let cat = if refs.len() == 1 { refs[0].to_string() } else { l.b.concat(&refs, 1) };
            let z = l.batch_norm(&cat, &format!("{p}.norm1"), spec.inp);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv1.weight"), spec.bottleneck, spec.inp, 1);
            let z = l.b.conv(&z, &w, None, 1, ConvAttrs::new(1, 0));
            let z = l.batch_norm(&z, &format!("{p}.norm2"), spec.bottleneck);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv2.weight"), spec.growth, spec.bottleneck, 3);
            feats.push(l.b.conv(&z, &w, None, 3, ConvAttrs::new(1, 1)));
        }
        let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
        y = l.b.concat(&refs, 1);
        if let Some(t) = cfg.transition(bi) {
            let p = format!("features.transition{}", bi + 1);
            let z = l.batch_norm(&y, &format!("{p}.norm"), t.inp);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv.weight"), t.out, t.inp, 1);
            let z = l.b.conv(&z, &w, None, 1, ConvAttrs::new(1, 0));
            y = l.b.average_pool(&z, 2, 2);
        }
    }
    let c = cfg.last_channels();
    let y = l.batch_norm(&y, "features.norm5", c);
    l.b.relu(&y);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, c, opts.classes.len(), "classifier");
    l.finish(opts, &cfg.name(), Some((c, cfg.feature_size(opts.input_size))))
}

/// A small CNN (two conv blocks, BN, ReLU, average pooling) with a `features`
/// output: a fast fixture for tests.
pub fn tiny_cnn(opts: &RandomNet) -> Vec<u8> {
    let mut l = Layers::new("tiny_cnn", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &[Dim::from("N"), 3.into(), s.into(), s.into()]);
    let w = l.conv_weight("conv1.weight", 8, 3, 3);
    let bias = l.rng.vec(8, -0.1, 0.1);
    let bias = l.b.constant("conv1.bias", &[8], &bias);
    let y = l.b.conv(&x, &w, Some(&bias), 3, ConvAttrs::new(2, 1));
    let y = l.batch_norm(&y, "bn1", 8);
    let y = l.b.relu(&y);
    let y = l.b.average_pool(&y, 2, 2);
    l.conv_bn(&y, "block2", 8, 16, 3, 1, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, 16, opts.classes.len(), "fc");
    let hw = opts.input_size.div_ceil(2) / 2;
    l.finish(opts, "tiny_cnn", Some((16, hw)))
}
