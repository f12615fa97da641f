//! Building blocks shared by the model files: convolution + batch norm +
//! activation with parameter paths chosen by the caller (so they equal the
//! torchvision / timm / lukemelas keys of pretrained files), and the padding
//! conventions those families use.

use super::depthwise::{self, Geometry};
use super::fused;
use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{batch_norm, BatchNorm, BatchNormConfig, VarBuilder};

/// Activation after a conv + BN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    /// max(0, x): DenseNet.
    Relu,
    /// min(max(0, x), 6): MobileNetV2, EfficientNet-Lite.
    Relu6,
}

impl Act {
    /// The interval the activation clamps to (±∞ where it does not): the
    /// fused kernels compute `x.max(lo).min(hi)` and pass the gradient
    /// where `lo < x < hi`, without a branch.
    pub fn bounds(self) -> (f32, f32) {
        match self {
            Act::None => (f32::NEG_INFINITY, f32::INFINITY),
            Act::Relu => (0.0, f32::INFINITY),
            Act::Relu6 => (0.0, 6.0),
        }
    }

    /// The activation composed from candle ops.
    pub fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Act::None => Ok(xs.clone()),
            Act::Relu => xs.relu(),
            Act::Relu6 => xs.clamp(0f32, 6f32),
        }
    }
}

/// How a convolution pads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// k/2 on every side (PyTorch's usual choice).
    Symmetric,
    /// TensorFlow "SAME" for inputs divisible by the stride: the extra pixel
    /// of an even total goes at the end (what TF-trained weights expect).
    TfSame,
}

impl Padding {
    pub fn geometry(self, kernel: usize, stride: usize) -> Geometry {
        match self {
            Padding::Symmetric => Geometry { kernel, stride, pad_begin: kernel / 2, pad_end: kernel / 2 },
            Padding::TfSame => {
                let total = kernel.saturating_sub(stride);
                Geometry { kernel, stride, pad_begin: total / 2, pad_end: total - total / 2 }
            }
        }
    }
}

/// BatchNorm parameters as PyTorch names them (weight, bias, running_mean,
/// running_var); `momentum` is PyTorch's (weight of the new batch).
pub fn bn(vb: VarBuilder, channels: usize, eps: f64, momentum: f64) -> Result<BatchNorm> {
    batch_norm(channels, BatchNormConfig { eps, remove_mean: true, affine: true, momentum }, vb)
}

/// A bias-free convolution, then BatchNorm, then an activation.
#[derive(Debug, Clone)]
pub struct ConvBn {
    /// The conv's parameter path (`features.1.conv.0.0`): the exported ONNX
    /// file names this layer's folded weight and bias after it.
    path: String,
    weight: Tensor,
    bn: BatchNorm,
    geometry: Geometry,
    groups: usize,
    act: Act,
}

/// Shape of one [`ConvBn`].
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub inp: usize,
    pub out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub act: Act,
    pub padding: Padding,
}

impl ConvBn {
    /// `conv` holds `weight` `[out, inp/groups, k, k]`; `norm` the BN parameters.
    pub fn new(conv: VarBuilder, norm: VarBuilder, s: ConvSpec, bn_eps: f64, bn_momentum: f64) -> Result<Self> {
        let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let weight = conv.get_with_hints((s.out, s.inp / s.groups, s.kernel, s.kernel), "weight", init)?;
        Ok(ConvBn { path: conv.prefix(), weight, bn: bn(norm, s.out, bn_eps, bn_momentum)?, geometry: s.padding.geometry(s.kernel, s.stride), groups: s.groups, act: s.act })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The conv's parameter path (its weight is `{path}.weight`).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn batch_norm(&self) -> &BatchNorm {
        &self.bn
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    pub fn act(&self) -> Act {
        self.act
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if let (true, true, Some((gamma, beta))) = (train, depthwise::supported(xs) && xs.rank() == 4, self.bn.weight_and_bias()) {
            // One fused op per layer (see `fused`), convolution included;
            // only grouped, non-depthwise convolutions run through candle first.
            let out = match self.fused_conv(xs)? {
                Some(kind) => fused::conv_bn_act(xs, &self.weight, gamma, beta, kind, self.bn.eps(), self.act)?,
                None => fused::bn_act(&conv(xs, &self.weight, self.geometry, self.groups)?, gamma, beta, self.bn.eps(), self.act)?,
            };
            update_running_stats(&self.bn, &out.stats, out.y.elem_count() / out.y.dim(1)?)?;
            return Ok(out.y);
        }
        self.act.apply(&self.bn.forward_t(&conv(xs, &self.weight, self.geometry, self.groups)?, train)?)
    }

    /// The weight and bias of the conv with its BatchNorm (running
    /// statistics) folded in: w·s and β − μ·s with s = γ/√(σ² + ε), computed
    /// in the same f32 operations as the export's fold, so the two agree bit for bit.
    pub fn folded(&self) -> Result<(Tensor, Tensor)> {
        let (gamma, beta) = self.bn.weight_and_bias().ok_or_else(|| candle_core::Error::Msg(format!("{}: BatchNorm without affine parameters", self.path)))?;
        // The running statistics are frozen: no gradient flows into them.
        let s = gamma.div(&self.bn.running_var().detach().affine(1.0, self.bn.eps())?.sqrt()?)?;
        let out = s.dim(0)?;
        let w = self.weight.broadcast_mul(&s.reshape((out, 1, 1, 1))?)?;
        let b = beta.sub(&self.bn.running_mean().detach().mul(&s)?)?;
        Ok((w, b))
    }

    /// Quantization-aware forward pass: BatchNorm frozen and folded
    /// ([`Self::folded`]), the folded weight fake-quantized with `scheme`, the
    /// bias rounded to float16 — what the quantized export computes.
    pub fn forward_qat(&self, xs: &Tensor, scheme: mriscreen::model::quant::Scheme) -> Result<Tensor> {
        let (w, b) = self.folded()?;
        let w = super::fake_quant::fake_quantize(&w, mriscreen::model::quant::Axes::OUT_FIRST, scheme)?;
        let b = super::fake_quant::round_f16(&b)?;
        if depthwise::supported(xs) && xs.rank() == 4 {
            if let Some(kind) = self.fused_conv(xs)? {
                return super::conv_act::conv_bias_act(xs, &w, &b, kind, self.act);
            }
        }
        let out = b.dim(0)?;
        self.act.apply(&conv(xs, &w, self.geometry, self.groups)?.broadcast_add(&b.reshape((1, out, 1, 1))?)?)
    }

    /// The convolution the fused op can run itself, if this is one.
    fn fused_conv(&self, xs: &Tensor) -> Result<Option<fused::Conv>> {
        let (cout, _, kh, kw) = self.weight.dims4()?;
        let g = self.geometry;
        Ok(if self.groups > 1 && self.groups == xs.dim(1)? && self.groups == cout {
            Some(fused::Conv::Depthwise(g))
        } else if (kh, kw, g.stride, g.pad_begin, g.pad_end, self.groups) == (1, 1, 1, 0, 0, 1) {
            Some(fused::Conv::Pointwise)
        } else if self.groups == 1 && kh == kw {
            Some(fused::Conv::General(g))
        } else {
            None
        })
    }
}

/// Updates `bn`'s running mean and (unbiased) variance from a batch's
/// `[2, C]` statistics over `m` values per channel, as PyTorch and candle do.
pub fn update_running_stats(bn: &BatchNorm, st: &Tensor, m: usize) -> Result<()> {
    let m = m as f64;
    let mom = bn.momentum();
    let mean = candle_core::Var::from_tensor(bn.running_mean())?;
    let var = candle_core::Var::from_tensor(bn.running_var())?;
    mean.set(&((mean.as_tensor() * (1.0 - mom))? + (st.get(0)? * mom)?)?)?;
    var.set(&((var.as_tensor() * (1.0 - mom))? + (st.get(1)? * (mom * m / (m - 1.0).max(1.0)))?)?)?;
    Ok(())
}

/// A residual-capable block: a sequence of ConvBn, plus its input when
/// shapes allow (MobileNetV2's inverted residual, EfficientNet's MBConv).
#[derive(Debug, Clone)]
pub struct Block {
    pub layers: Vec<ConvBn>,
    pub residual: bool,
}

impl Block {
    /// [`ConvBn::forward_qat`] through the block.
    pub fn forward_qat(&self, xs: &Tensor, scheme: mriscreen::model::quant::Scheme) -> Result<Tensor> {
        let mut ys = xs.clone();
        for l in &self.layers {
            ys = l.forward_qat(&ys, scheme)?;
        }
        if self.residual { xs + ys } else { Ok(ys) }
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut ys = xs.clone();
        for l in &self.layers {
            ys = l.forward_t(&ys, train)?;
        }
        if self.residual { xs + ys } else { Ok(ys) }
    }
}

/// A convolution with the given geometry; depthwise layers on the CPU use
/// the direct kernel in [`depthwise`], everything else candle's conv2d.
pub fn conv(xs: &Tensor, w: &Tensor, g: Geometry, groups: usize) -> Result<Tensor> {
    let channels = xs.dim(1)?;
    if groups > 1 && groups == channels && depthwise::supported(xs) {
        return depthwise::depthwise_conv2d(&xs.contiguous()?, w, g);
    }
    let (cout, cin, kh, kw) = w.dims4()?;
    if (kh, kw, g.stride, g.pad_begin, g.pad_end, groups) == (1, 1, 1, 0, 0, 1) {
        // A pointwise convolution is a matrix product: [Cout,Cin] · [N,Cin,H·W].
        // candle's conv2d would copy through im2col, and its backward runs a
        // slow transposed convolution; matmul's backward is two GEMMs.
        let (n, _, h, wd) = xs.dims4()?;
        let ys = w.reshape((cout, cin))?.broadcast_matmul(&xs.contiguous()?.reshape((n, cin, h * wd))?)?;
        return ys.reshape((n, cout, h, wd));
    }
    if g.pad_begin == g.pad_end {
        return xs.conv2d(w, g.pad_begin, g.stride, 1, groups);
    }
    let xs = xs.pad_with_zeros(2, g.pad_begin, g.pad_end)?.pad_with_zeros(3, g.pad_begin, g.pad_end)?;
    xs.conv2d(w, 0, g.stride, 1, groups)
}

/// Global average pooling `[N,C,H,W]` → `[N,C]`.
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    xs.mean((2, 3))
}

/// Dropout then a linear layer: the classification head shared by the
/// families. The dropout mask comes from our seeded RNG (candle's CPU RNG
/// cannot be seeded), so training is reproducible.
#[derive(Debug)]
pub struct Head {
    /// The linear layer's parameter path (`classifier.1`, `_fc`).
    pub path: String,
    pub linear: candle_nn::Linear,
    pub dropout: f32,
    rng: std::sync::Mutex<mriscreen::rng::Rng>,
}

impl Head {
    /// `linear` holds `weight` `[classes, features]` and `bias` (PyTorch's Linear).
    pub fn new(linear: VarBuilder, features: usize, classes: usize, dropout: f32, seed: u64) -> Result<Self> {
        let path = linear.prefix();
        let linear = candle_nn::linear(features, classes, linear)?;
        Ok(Head { path, linear, dropout, rng: std::sync::Mutex::new(mriscreen::rng::Rng::new(seed)) })
    }

    /// Restarts the dropout masks from `seed`. Training calls it at the start
    /// of every epoch with that epoch's seed, so a run resumed from a
    /// checkpoint draws the same masks as one that was never interrupted.
    pub fn reseed(&self, seed: u64) -> Result<()> {
        let mut rng = self.rng.lock().map_err(|_| candle_core::Error::Msg("dropout RNG poisoned".into()))?;
        *rng = mriscreen::rng::Rng::new(seed);
        Ok(())
    }

    /// The classifier as the quantized export computes it: weight
    /// fake-quantized with `scheme`, bias rounded to float16, dropout when training.
    pub fn forward_qat(&self, pooled: &Tensor, scheme: mriscreen::model::quant::Scheme, train: bool) -> Result<Tensor> {
        let w = super::fake_quant::fake_quantize(self.linear.weight(), mriscreen::model::quant::Axes::OUT_FIRST, scheme)?;
        let b = self.linear.bias().map(super::fake_quant::round_f16).transpose()?;
        let xs = self.dropped(pooled, train)?;
        let ys = xs.matmul(&w.t()?)?;
        match b {
            Some(b) => ys.broadcast_add(&b),
            None => Ok(ys),
        }
    }

    /// `pooled` with dropout applied when training.
    fn dropped(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.dropout <= 0.0 {
            return Ok(pooled.clone());
        }
        let keep = 1.0 - self.dropout;
        let n = pooled.elem_count();
        let mask: Vec<f32> = {
            let mut rng = self.rng.lock().map_err(|_| candle_core::Error::Msg("dropout RNG poisoned".into()))?;
            (0..n).map(|_| if rng.uniform() < keep { 1.0 / keep } else { 0.0 }).collect()
        };
        pooled * Tensor::from_vec(mask, pooled.shape(), pooled.device())?
    }

    pub fn forward_t(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.dropout <= 0.0 {
            return self.linear.forward(pooled);
        }
        self.linear.forward(&self.dropped(pooled, train)?)
    }
}
