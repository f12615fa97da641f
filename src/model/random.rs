//! Randomly initialised reference graphs, deterministic from a seed: the
//! untrained placeholder model, test fixtures, and latency benchmarks (random
//! weights time exactly like trained ones).
//!
//! [`mobilenet_v2`] follows torchvision's MobileNetV2 (Sandler et al. 2018):
//! inverted residual blocks (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2)
//! (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1), channels scaled by α and
//! rounded to multiples of 8, a 1280-wide last conv (1280·α when α > 1),
//! Conv → BatchNormalization → Clip(0, 6) everywhere, and node/initializer
//! names following torchvision's parameter keys (`features.3.conv.1.0.weight`).

use super::builder::{ConvAttrs, Dim, GraphBuilder};
use super::{keys, Precision};

/// SplitMix64: tiny, seedable, identical on every platform (wasm included).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
}

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

/// The four classes of the product, in output order.
pub const CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

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
        let s = opts.input_size as i64;
        let n = opts.classes.len() as i64;
        self.b.output("logits", &[1.into(), n.into()]);
        if let Some((k, hw)) = features {
            self.b.output("features", &[1.into(), (k as i64).into(), (hw as i64).into(), (hw as i64).into()]);
        }
        let b = &mut self.b;
        b.metadata(keys::CLASSES, &serde_json::to_string(&opts.classes).unwrap_or_default());
        b.metadata(keys::INPUT_SIZE, &s.to_string());
        b.metadata(keys::MEAN, "[0.5, 0.5, 0.5]");
        b.metadata(keys::STD, "[0.25, 0.25, 0.25]");
        b.metadata(keys::RESIZE, "letterbox");
        b.metadata(keys::INTENSITY, "robust");
        b.metadata(keys::ARCH, arch);
        b.metadata(keys::PRECISION, &opts.precision.to_string());
        b.metadata(keys::TEMPERATURE, "1");
        b.metadata(keys::TRAINED_ON, &opts.trained_on);
        self.b.to_bytes()
    }
}

/// torchvision's `_make_divisible`.
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let mut n = ((v + d / 2.0) / d).floor() as usize * divisor;
    n = n.max(divisor);
    if (n as f32) < 0.9 * v {
        n += divisor;
    }
    n
}

/// A random MobileNetV2 with width multiplier `alpha` (see the module docs).
pub fn mobilenet_v2(alpha: f32, opts: &RandomNet) -> Vec<u8> {
    let mut l = Layers::new("mobilenet_v2", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let mut c = make_divisible(32.0 * alpha, 8);
    let mut y = l.conv_bn(&x, "features.0", 3, c, 3, 2, 1, true);
    let mut idx = 1;
    let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    for (t, ch, n, stride) in settings {
        let out = make_divisible(ch as f32 * alpha, 8);
        for i in 0..n {
            let stride = if i == 0 { stride } else { 1 };
            y = inverted_residual(&mut l, &y, idx, c, out, stride, t);
            c = out;
            idx += 1;
        }
    }
    let last = make_divisible(1280.0 * alpha.max(1.0), 8);
    l.conv_bn(&y, &format!("features.{idx}"), c, last, 1, 1, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, last, opts.classes.len(), "classifier.1");
    let hw = (opts.input_size + 31) / 32;
    l.finish(opts, &format!("mobilenet_v2_{alpha:?}"), Some((last, hw)))
}

fn inverted_residual(l: &mut Layers, x: &str, idx: usize, inp: usize, out: usize, stride: usize, t: usize) -> String {
    let hidden = inp * t;
    let p = format!("features.{idx}.conv");
    let mut y = x.to_string();
    let mut j = 0;
    if t != 1 {
        y = l.conv_bn(&y, &format!("{p}.{j}"), inp, hidden, 1, 1, 1, true);
        j += 1;
    }
    y = l.conv_bn(&y, &format!("{p}.{j}"), hidden, hidden, 3, stride, hidden, true);
    // The projection is a bare conv + BN (linear bottleneck), torchvision
    // names them conv.{j+1}.weight and conv.{j+2}.*.
    let w = l.conv_weight(&format!("{p}.{}.weight", j + 1), out, hidden, 1);
    y = l.b.conv(&y, &w, None, 1, ConvAttrs::new(1, 0));
    y = l.batch_norm(&y, &format!("{p}.{}", j + 2), out);
    if stride == 1 && inp == out {
        y = l.b.add(x, &y);
    }
    y
}

/// A random EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant drops
/// squeeze-excitation and uses ReLU6): MBConv blocks (kernel, stride,
/// expansion, channels, repeats) = (3,1,1,16,1) (3,2,6,24,2) (5,2,6,40,2)
/// (3,2,6,80,3) (5,1,6,112,3) (5,2,6,192,4) (3,1,6,320,1), a 32-channel stem
/// and a 1280-channel head; symmetric padding k/2.
pub fn efficientnet_lite0(opts: &RandomNet) -> Vec<u8> {
    let mut l = Layers::new("efficientnet_lite0", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let mut y = l.conv_bn(&x, "stem", 3, 32, 3, 2, 1, true);
    let mut c = 32;
    let stages = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)];
    for (si, (k, stride, e, out, n)) in stages.into_iter().enumerate() {
        for i in 0..n {
            let stride = if i == 0 { stride } else { 1 };
            let p = format!("blocks.{si}.{i}");
            let hidden = c * e;
            let mut z = y.clone();
            if e != 1 {
                z = l.conv_bn(&z, &format!("{p}.conv_pw"), c, hidden, 1, 1, 1, true);
            }
            z = l.conv_bn(&z, &format!("{p}.conv_dw"), hidden, hidden, k, stride, hidden, true);
            z = l.conv_bn(&z, &format!("{p}.conv_pwl"), hidden, out, 1, 1, 1, false);
            y = if stride == 1 && c == out { l.b.add(&y, &z) } else { z };
            c = out;
        }
    }
    l.conv_bn(&y, "conv_head", c, 1280, 1, 1, 1, true);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, 1280, opts.classes.len(), "classifier");
    let hw = opts.input_size.div_ceil(32);
    l.finish(opts, "efficientnet_lite0", Some((1280, hw)))
}

/// A random DenseNet (Huang et al. 2017) in torchvision's layout: stem conv
/// 7×7/2 + BN + ReLU, then dense blocks whose layers are BN → ReLU → 1×1 conv
/// (4·growth) → BN → ReLU → 3×3 conv (growth), every layer reading the
/// channel-concatenation of all earlier outputs (bias-free convs, many-input
/// Concats), transitions BN → ReLU → 1×1 conv (half the channels) → 2×2
/// average pool, and a final BN → ReLU as the `features` output.
pub fn densenet(blocks: &[usize], growth: usize, opts: &RandomNet) -> Vec<u8> {
    let mut l = Layers::new("densenet", opts);
    let s = opts.input_size as i64;
    let x = l.b.input("input", &["N".into(), 3.into(), s.into(), s.into()]);
    let mut c = 2 * growth;
    let w = l.conv_weight("features.conv0.weight", c, 3, 7);
    let y = l.b.conv(&x, &w, None, 7, ConvAttrs::new(2, 3));
    let y = l.batch_norm(&y, "features.norm0", c);
    let mut y = l.b.relu(&y);
    let mut hw = opts.input_size.div_ceil(2);
    for (bi, &n) in blocks.iter().enumerate() {
        let mut feats = vec![y.clone()];
        for li in 0..n {
            let p = format!("features.denseblock{}.denselayer{}", bi + 1, li + 1);
            let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
            let cat = if refs.len() == 1 { refs[0].to_string() } else { l.b.concat(&refs, 1) };
            let z = l.batch_norm(&cat, &format!("{p}.norm1"), c + li * growth);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv1.weight"), 4 * growth, c + li * growth, 1);
            let z = l.b.conv(&z, &w, None, 1, ConvAttrs::new(1, 0));
            let z = l.batch_norm(&z, &format!("{p}.norm2"), 4 * growth);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv2.weight"), growth, 4 * growth, 3);
            feats.push(l.b.conv(&z, &w, None, 3, ConvAttrs::new(1, 1)));
        }
        let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
        y = l.b.concat(&refs, 1);
        c += n * growth;
        if bi + 1 < blocks.len() {
            let p = format!("features.transition{}", bi + 1);
            let z = l.batch_norm(&y, &format!("{p}.norm"), c);
            let z = l.b.relu(&z);
            let w = l.conv_weight(&format!("{p}.conv.weight"), c / 2, c, 1);
            let z = l.b.conv(&z, &w, None, 1, ConvAttrs::new(1, 0));
            y = l.b.average_pool(&z, 2, 2);
            c /= 2;
            hw /= 2;
        }
    }
    let y = l.batch_norm(&y, "features.norm5", c);
    l.b.relu(&y);
    let f = l.b.rename_last_output("features");
    l.classifier(&f, c, opts.classes.len(), "classifier");
    l.finish(opts, &format!("densenet_{}", blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("-")), Some((c, hw)))
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

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.uniform();
            assert_eq!(x, b.uniform());
            assert!((0.0..1.0).contains(&x));
        }
    }
}
