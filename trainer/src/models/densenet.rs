//! DenseNet-BC in candle, as torchvision builds it, so a torchvision
//! `densenet121` state dict loads by name (after [`crate::weights`] maps
//! its legacy `norm.1` keys to `norm1`): `features.conv0` 7×7/2 stem with
//! `features.norm0` and ReLU, a 3×3/2 max pool, then per block
//! `features.denseblock{b}.denselayer{l}` (`norm1` → ReLU → `conv1` 1×1 →
//! `norm2` → ReLU → `conv2` 3×3), `features.transition{b}` (`norm` → ReLU →
//! `conv` 1×1 → 2×2 average pool) between blocks, `features.norm5` → ReLU
//! (the feature map) and `classifier`. Shapes come from the library's table
//! ([`mriscreen::arch::densenet`], which also lists the named configs, their
//! depth and parameter counts). BN eps 1e-5, momentum 0.1, no dropout.
//!
//! Speed on 2 cores: each `conv1` with its `norm2` and ReLU is one fused op
//! ([`super::fused`]), each pre-activation `norm1` + ReLU another, and the
//! 3×3 convolutions run as im2col + GEMM with their own backward
//! ([`super::conv_act`]) instead of candle's transposed convolution. Each
//! layer concatenates the block's features so far (`Tensor::cat`): a copy of
//! C·H·W values against the C·H·W·4k multiply-adds of the `conv1` reading
//! them, so under 1 % of a layer's work, and the only way candle's autograd
//! allows (it has no in-place writes into a shared buffer).

use super::conv_act::conv_bias_act;
use super::depthwise::{self, Geometry};
use super::fused::{self, Conv};
use super::layers::{self, global_avg_pool, Act, ConvBn, ConvSpec, Head, Padding};
use super::pool::max_pool;
use candle_core::{DType, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, VarBuilder};
use mriscreen::arch::densenet;
use mriscreen::model::quant::{Axes, Scheme};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub net: mriscreen::arch::DenseNet,
    pub classes: usize,
    /// Seed of the (unused: DenseNet has no dropout) head's mask RNG.
    pub seed: u64,
}

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;
/// The stem's max pool: 3×3, stride 2, padding 1.
const STEM_POOL: Geometry = Geometry { kernel: 3, stride: 2, pad_begin: 1, pad_end: 1 };

/// BatchNorm → ReLU with no convolution in front: DenseNet's pre-activation.
#[derive(Debug, Clone)]
pub struct Norm {
    /// The BatchNorm's parameter path (`features.denseblock1.denselayer1.norm1`).
    pub path: String,
    pub bn: BatchNorm,
}

impl Norm {
    fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Norm { path: vb.prefix(), bn: layers::bn(vb, channels, BN_EPS, BN_MOMENTUM)? })
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if let (true, true, Some((gamma, beta))) = (train, depthwise::supported(xs) && xs.rank() == 4, self.bn.weight_and_bias()) {
            let out = fused::bn_act(xs, gamma, beta, self.bn.eps(), Act::Relu)?;
            layers::update_running_stats(&self.bn, &out.stats, out.y.elem_count() / out.y.dim(1)?)?;
            return Ok(out.y);
        }
        self.bn.forward_t(xs, train)?.relu()
    }
}

/// A bias-free convolution with nothing folded into it (DenseNet's `conv2`
/// and transition convs: a BatchNorm follows only after a concatenation).
#[derive(Debug, Clone)]
pub struct PlainConv {
    /// The conv's parameter path (its weight is `{path}.weight`).
    pub path: String,
    pub weight: Tensor,
    pub geometry: Geometry,
}

impl PlainConv {
    fn new(vb: VarBuilder, inp: usize, out: usize, kernel: usize) -> Result<Self> {
        let weight = vb.get_with_hints((out, inp, kernel, kernel), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        Ok(PlainConv { path: vb.prefix(), weight, geometry: Padding::Symmetric.geometry(kernel, 1) })
    }

    fn apply(&self, xs: &Tensor, w: &Tensor) -> Result<Tensor> {
        let (cout, _, k, _) = w.dims4()?;
        if k > 1 && depthwise::supported(xs) && xs.rank() == 4 {
            // im2col + GEMM with its own backward; the zero bias is a constant.
            let zero = Tensor::zeros(cout, DType::F32, xs.device())?;
            return conv_bias_act(xs, w, &zero, Conv::General(self.geometry), Act::None);
        }
        layers::conv(xs, w, self.geometry, 1)
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.apply(xs, &self.weight)
    }

    /// With the weight fake-quantized as the quantized export stores it.
    pub fn forward_qat(&self, xs: &Tensor, scheme: Scheme) -> Result<Tensor> {
        self.apply(xs, &super::fake_quant::fake_quantize(&self.weight, Axes::OUT_FIRST, scheme)?)
    }
}

/// norm1 → ReLU → conv1 (1×1) → norm2 → ReLU → conv2 (3×3).
#[derive(Debug, Clone)]
pub struct DenseLayer {
    pub norm1: Norm,
    /// conv1 with norm2 and its ReLU.
    pub conv1: ConvBn,
    pub conv2: PlainConv,
}

impl DenseLayer {
    fn new(vb: VarBuilder, spec: densenet::LayerSpec) -> Result<Self> {
        let s = ConvSpec { inp: spec.inp, out: spec.bottleneck, kernel: 1, stride: 1, groups: 1, act: Act::Relu, padding: Padding::Symmetric };
        Ok(DenseLayer {
            norm1: Norm::new(vb.pp("norm1"), spec.inp)?,
            conv1: ConvBn::new(vb.pp("conv1"), vb.pp("norm2"), s, BN_EPS, BN_MOMENTUM)?,
            conv2: PlainConv::new(vb.pp("conv2"), spec.bottleneck, spec.growth, 3)?,
        })
    }
}

/// A dense block or a transition: the units the stages unfreeze.
#[derive(Debug, Clone)]
pub enum Unit {
    Block(Vec<DenseLayer>),
    /// norm → ReLU → 1×1 conv → 2×2 average pool.
    Transition { norm: Norm, conv: PlainConv },
}

/// How a unit runs: training or inference mode, or quantization-aware.
#[derive(Clone, Copy)]
enum Mode {
    Train(bool),
    Qat(Scheme),
}

impl Unit {
    fn run(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let norm = |n: &Norm, x: &Tensor| match mode {
            Mode::Train(train) => n.forward_t(x, train),
            // The quantizer leaves these BatchNorms in fp32: frozen, not fake-quantized.
            Mode::Qat(_) => n.forward_t(x, false),
        };
        let conv = |c: &PlainConv, x: &Tensor| match mode {
            Mode::Train(_) => c.forward(x),
            Mode::Qat(scheme) => c.forward_qat(x, scheme),
        };
        match self {
            Unit::Block(layers) => {
                let mut feats = vec![xs.clone()];
                for l in layers {
                    let cat = if feats.len() == 1 { xs.clone() } else { Tensor::cat(&feats, 1)? };
                    let z = norm(&l.norm1, &cat)?;
                    let z = match mode {
                        Mode::Train(train) => l.conv1.forward_t(&z, train)?,
                        Mode::Qat(scheme) => l.conv1.forward_qat(&z, scheme)?,
                    };
                    feats.push(conv(&l.conv2, &z)?);
                }
                Tensor::cat(&feats, 1)
            }
            Unit::Transition { norm: n, conv: c } => conv(c, &norm(n, xs)?)?.avg_pool2d(2),
        }
    }
}

#[derive(Debug)]
pub struct DenseNet {
    pub config: densenet::Config,
    /// conv0 with norm0 and its ReLU (the max pool follows).
    pub stem: ConvBn,
    /// Dense blocks and transitions, in order.
    pub units: Vec<Unit>,
    pub norm5: Norm,
    pub head: Head,
}

impl DenseNet {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let shape = cfg.net.config();
        let f = vb.pp("features");
        let s = ConvSpec { inp: 3, out: shape.init_features, kernel: 7, stride: 2, groups: 1, act: Act::Relu, padding: Padding::Symmetric };
        let stem = ConvBn::new(f.pp("conv0"), f.pp("norm0"), s, BN_EPS, BN_MOMENTUM)?;
        let mut units = Vec::new();
        for b in 0..shape.blocks.len() {
            let block = f.pp(format!("denseblock{}", b + 1));
            let layers = shape.layers(b).into_iter().enumerate().map(|(l, spec)| DenseLayer::new(block.pp(format!("denselayer{}", l + 1)), spec));
            units.push(Unit::Block(layers.collect::<Result<_>>()?));
            if let Some(t) = shape.transition(b) {
                let vb = f.pp(format!("transition{}", b + 1));
                units.push(Unit::Transition { norm: Norm::new(vb.pp("norm"), t.inp)?, conv: PlainConv::new(vb.pp("conv"), t.inp, t.out, 1)? });
            }
        }
        let last = shape.last_channels();
        let norm5 = Norm::new(f.pp("norm5"), last)?;
        let head = Head::new(vb.pp("classifier"), last, cfg.classes, 0.0, cfg.seed)?;
        Ok(DenseNet { config: shape, stem, units, norm5, head })
    }

    fn stem_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        max_pool(&self.stem.forward_t(xs, train)?, STEM_POOL)
    }

    /// The last feature map `[N, C, H/r, W/r]` (r = 32 with four blocks).
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut ys = self.stem_t(xs, train)?;
        for u in &self.units {
            ys = u.run(&ys, Mode::Train(train))?;
        }
        self.norm5.forward_t(&ys, train)
    }

    /// Logits `[N, classes]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.head.forward_t(&global_avg_pool(&self.features_t(xs, train)?)?, train)
    }

    /// Logits with units `from..` (and norm5 and the head) in training mode,
    /// the stem and earlier units in inference mode and detached.
    pub fn forward_partial(&self, xs: &Tensor, from: usize) -> Result<Tensor> {
        let from = from.min(self.units.len());
        let mut ys = self.stem_t(xs, false)?;
        for u in &self.units[..from] {
            ys = u.run(&ys, Mode::Train(false))?;
        }
        ys = ys.detach();
        for u in &self.units[from..] {
            ys = u.run(&ys, Mode::Train(true))?;
        }
        self.head.forward_t(&global_avg_pool(&self.norm5.forward_t(&ys, true)?)?, true)
    }

    /// Logits as the quantized export computes them: the stem and every
    /// conv1 with their BatchNorm frozen and folded, every conv weight
    /// fake-quantized, the pre-activation BatchNorms frozen in f32.
    pub fn forward_qat(&self, xs: &Tensor, scheme: Scheme, train: bool) -> Result<Tensor> {
        let mut ys = max_pool(&self.stem.forward_qat(xs, scheme)?, STEM_POOL)?;
        for u in &self.units {
            ys = u.run(&ys, Mode::Qat(scheme))?;
        }
        let ys = self.norm5.forward_t(&ys, false)?;
        self.head.forward_qat(&global_avg_pool(&ys)?, scheme, train)
    }

    /// Every conv with a BatchNorm folded into it in the export (stem, conv1s).
    pub fn conv_bns(&self) -> Vec<&ConvBn> {
        let mut v = vec![&self.stem];
        for u in &self.units {
            if let Unit::Block(layers) = u {
                v.extend(layers.iter().map(|l| &l.conv1));
            }
        }
        v
    }

    /// Every pre-activation BatchNorm, in order.
    pub fn norms(&self) -> Vec<&Norm> {
        let mut v = Vec::new();
        for u in &self.units {
            match u {
                Unit::Block(layers) => v.extend(layers.iter().map(|l| &l.norm1)),
                Unit::Transition { norm, .. } => v.push(norm),
            }
        }
        v.push(&self.norm5);
        v
    }

    /// Every conv with nothing folded into it (conv2s, transition convs).
    pub fn plain_convs(&self) -> Vec<&PlainConv> {
        let mut v = Vec::new();
        for u in &self.units {
            match u {
                Unit::Block(layers) => v.extend(layers.iter().map(|l| &l.conv2)),
                Unit::Transition { conv, .. } => v.push(conv),
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::{max_diff, rand};
    use candle_core::Device;
    use candle_nn::VarMap;
    use mriscreen::arch::DenseNet as Net;

    fn model(net: Net, varmap: &VarMap) -> DenseNet {
        DenseNet::new(VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu), &Config { net, classes: 4, seed: 0 }).unwrap()
    }

    /// The candle model has exactly the parameters (and names) of the
    /// library's table and torchvision's state dict.
    #[test]
    fn parameters_match_the_table_and_torchvision_names() {
        for net in Net::ALL {
            let varmap = VarMap::new();
            model(net, &varmap);
            let data = varmap.data().lock().unwrap();
            let trainable: usize = data.iter().filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var")).map(|(_, v)| v.elem_count()).sum();
            assert_eq!(trainable, net.config().parameters(4), "{}", net.name());
        }
        let varmap = VarMap::new();
        model(Net::D121, &varmap);
        let data = varmap.data().lock().unwrap();
        for key in [
            "features.conv0.weight",
            "features.norm0.running_var",
            "features.denseblock1.denselayer1.norm1.weight",
            "features.denseblock1.denselayer6.conv2.weight",
            "features.denseblock4.denselayer16.norm2.bias",
            "features.transition3.conv.weight",
            "features.norm5.weight",
            "classifier.weight",
        ] {
            assert!(data.contains_key(key), "{key}");
        }
        assert_eq!(data["features.denseblock4.denselayer16.conv1.weight"].dims(), &[128, 992, 1, 1]);
        // 120 convs, 121 BatchNorms (weight, bias, running mean and variance)
        // and the classifier; torchvision's file adds each BatchNorm's
        // num_batches_tracked, which the loader skips.
        assert_eq!(data.len(), 120 + 4 * 121 + 2);
    }

    /// Training and inference modes give the shapes of the table; the fused
    /// training pass equals candle's composition of the same layers.
    #[test]
    fn forward_shapes_and_the_fused_pass_match_candle() {
        let varmap = VarMap::new();
        let m = model(Net::D32, &varmap);
        let x = rand(&[2, 3, 64, 64], 1, -1.0, 1.0);
        let f = m.features_t(&x, false).unwrap();
        assert_eq!(f.dims(), &[2, 170, 4, 4]);
        assert_eq!(m.forward_t(&x, false).unwrap().dims(), &[2, 4]);
        // One pre-activation layer: fused BN + ReLU against candle's.
        let norm = &m.norms()[0];
        let z = rand(&[2, 40, 5, 5], 2, -2.0, 2.0);
        let fused = norm.forward_t(&z, true).unwrap();
        let mean = z.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let zc = z.broadcast_sub(&mean).unwrap();
        let var = zc.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let want = zc.broadcast_div(&(var + BN_EPS).unwrap().sqrt().unwrap()).unwrap().relu().unwrap();
        assert!(max_diff(&fused, &want) < 1e-4, "{}", max_diff(&fused, &want));
        // A 3×3 plain conv through the custom op equals candle's conv2d.
        let c = &m.plain_convs()[0];
        let y = rand(&[2, 80, 6, 6], 3, -1.0, 1.0);
        let d = max_diff(&c.forward(&y).unwrap(), &y.conv2d(&c.weight, 1, 1, 1, 1).unwrap());
        assert!(d < 1e-4, "{d}");
    }

    /// Gradients reach every parameter in training, and only the unfrozen
    /// units' (plus norm5 and the head) in a partial pass.
    #[test]
    fn gradients_reach_what_trains() {
        let varmap = VarMap::new();
        let m = model(Net::D32, &varmap);
        let x = rand(&[2, 3, 32, 32], 4, -1.0, 1.0);
        let named = |grads: &candle_core::backprop::GradStore| -> Vec<String> {
            let data = varmap.data().lock().unwrap();
            let mut v: Vec<String> = data.iter().filter(|(_, var)| grads.get(var.as_tensor()).is_some()).map(|(n, _)| n.clone()).collect();
            v.sort();
            v
        };
        let grads = m.forward_t(&x, true).unwrap().sum_all().unwrap().backward().unwrap();
        let all = named(&grads);
        assert!(all.iter().any(|n| n == "features.conv0.weight") && all.iter().any(|n| n == "features.denseblock1.denselayer1.conv2.weight"), "{all:?}");
        // Units: block1, transition1, block2, transition2, block3; from 4: block3 only.
        let grads = m.forward_partial(&x, 4).unwrap().sum_all().unwrap().backward().unwrap();
        let some = named(&grads);
        assert!(some.iter().all(|n| n.starts_with("features.denseblock3") || n.starts_with("features.norm5") || n.starts_with("classifier")), "{some:?}");
        assert!(some.iter().any(|n| n.starts_with("features.denseblock3")));
    }
}
