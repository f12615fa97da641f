//! ONNX export per the contract in docs/architecture.md ("The ONNX contract"), through the shared graph
//! builder: BatchNorm folded into each convolution (w·γ/√(σ²+ε), β − μ·γ/√(σ²+ε)),
//! ReLU6 as Clip(0, 6), residual Adds (DenseNet: Concats, and its
//! pre-activation BatchNorms, which follow no convolution, as
//! BatchNormalization nodes under their own parameter paths), a `features` output (the last feature
//! map) and `logits` from GlobalAveragePool → Flatten → Gemm, plus the
//! `mriscreen.*` metadata. Each initializer is named after the parameter it
//! comes from: `{conv}.weight` and `{conv}.bias` are the conv at that path
//! with its BatchNorm folded in (candle's conv has no bias: the folded one
//! takes the name PyTorch would give it), and the classifier keeps its
//! linear layer's `{path}.weight` / `{path}.bias`, so each ONNX weight maps
//! to one candle / torchvision parameter path and back. The export verifies itself: tract runs the file on validation
//! inputs and its logits must equal the trainer's within 1e-4 of the logit
//! scale, or nothing is written.

use crate::models::densenet::{DenseNet, Norm, PlainConv, Unit};
use crate::models::layers::{Act, ConvBn};
use crate::models::{Arch, Model};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use mriscreen::model::builder::{ConvAttrs, GraphBuilder};
use mriscreen::model::{Description, LoadOptions, ModelPackage, Precision};
use mriscreen::preprocess::InputSpec;
use std::path::Path;

/// What goes into the file besides the weights.
#[derive(Debug, Clone)]
pub struct ExportInfo {
    pub arch: Arch,
    pub classes: Vec<String>,
    pub input: InputSpec,
    pub precision: Precision,
    pub temperature: f32,
    /// Value of `mriscreen.trained_on`: what the model learned from.
    pub trained_on: String,
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Emits one ConvBn with its BatchNorm folded in, named after the conv's
/// parameter path; returns the output name.
fn conv_bn(b: &mut GraphBuilder, x: &str, layer: &ConvBn) -> Result<String> {
    let name = layer.path();
    let w = layer.weight();
    let (out, inp, k, _) = w.dims4()?;
    let bn = layer.batch_norm();
    let (gamma, beta) = bn.weight_and_bias().context("BatchNorm without affine parameters")?;
    let (gamma, beta) = (values(gamma)?, values(beta)?);
    let (mean, var) = (values(bn.running_mean())?, values(bn.running_var())?);
    let eps = bn.eps() as f32;
    let mut wv = values(w)?;
    let per = inp * k * k;
    let mut bias = vec![0f32; out];
    for o in 0..out {
        let s = gamma[o] / (var[o] + eps).sqrt();
        wv[o * per..(o + 1) * per].iter_mut().for_each(|v| *v *= s);
        bias[o] = beta[o] - mean[o] * s;
    }
    let wname = b.weight(&format!("{name}.weight"), &[out, inp, k, k], &wv);
    let bname = b.bias(&format!("{name}.bias"), &[out], &bias);
    let g = layer.geometry();
    let attrs = ConvAttrs::asymmetric(g.stride as i64, g.pad_begin as i64, g.pad_end as i64, layer.groups() as i64);
    let y = b.conv(x, &wname, Some(&bname), k as i64, attrs);
    Ok(match layer.act() {
        Act::None => y,
        Act::Relu => b.relu(&y),
        Act::Relu6 => b.clip(&y, 0.0, 6.0),
    })
}

/// A DenseNet pre-activation: BatchNormalization (its parameters under the
/// BatchNorm's own paths, in f32: nothing precedes it to fold into) → Relu.
fn norm(b: &mut GraphBuilder, x: &str, n: &Norm) -> Result<String> {
    let (gamma, beta) = n.bn.weight_and_bias().context("BatchNorm without affine parameters")?;
    let c = gamma.dim(0)?;
    let mut param = |kind: &str, t: &Tensor| -> Result<String> { Ok(b.constant(&format!("{}.{kind}", n.path), &[c], &values(t)?)) };
    let (g, bt, m, v) = (param("weight", gamma)?, param("bias", beta)?, param("running_mean", n.bn.running_mean())?, param("running_var", n.bn.running_var())?);
    let y = b.batch_norm(x, &g, &bt, &m, &v, n.bn.eps() as f32);
    Ok(b.relu(&y))
}

/// A bias-free conv with nothing folded into it.
fn plain_conv(b: &mut GraphBuilder, x: &str, c: &PlainConv) -> Result<String> {
    let (out, inp, k, _) = c.weight.dims4()?;
    let w = b.weight(&format!("{}.weight", c.path), &[out, inp, k, k], &values(&c.weight)?);
    let g = c.geometry;
    Ok(b.conv(x, &w, None, k as i64, ConvAttrs::asymmetric(g.stride as i64, g.pad_begin as i64, g.pad_end as i64, 1)))
}

/// DenseNet's feature extractor (see `models::densenet`), ending in the
/// `features` map: stem (conv0 with norm0 folded, ReLU, max pool), dense
/// blocks (Concat of the features so far → norm1 → ReLU → conv1 with norm2
/// folded → ReLU → conv2), transitions (norm → ReLU → conv → average pool),
/// norm5 → ReLU.
fn densenet_features(b: &mut GraphBuilder, x: &str, m: &DenseNet) -> Result<()> {
    let y = conv_bn(b, x, &m.stem)?;
    let mut y = b.max_pool(&y, 3, 2, 1);
    for unit in &m.units {
        y = match unit {
            Unit::Block(layers) => {
                let mut feats = vec![y.clone()];
                for l in layers {
                    let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
                    let cat = if refs.len() == 1 { y.clone() } else { b.concat(&refs, 1) };
                    let z = norm(b, &cat, &l.norm1)?;
                    let z = conv_bn(b, &z, &l.conv1)?;
                    feats.push(plain_conv(b, &z, &l.conv2)?);
                }
                let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
                b.concat(&refs, 1)
            }
            Unit::Transition { norm: n, conv } => {
                let z = norm(b, &y, n)?;
                let z = plain_conv(b, &z, conv)?;
                b.average_pool(&z, 2, 2)
            }
        };
    }
    norm(b, &y, &m.norm5)?;
    Ok(())
}

/// Builds the ONNX bytes for `model`.
pub fn to_onnx(model: &Model, info: &ExportInfo) -> Result<Vec<u8>> {
    let mut b = GraphBuilder::new(&info.arch.name()).with_precision(info.precision);
    let (h, w) = (info.input.height as i64, info.input.width as i64);
    let x = b.input("input", &[1.into(), 3.into(), h.into(), w.into()]);
    let feature_size: Box<dyn Fn(i64) -> i64> = match (model, model.parts()) {
        (Model::DenseNet(m), _) => {
            densenet_features(&mut b, &x, m)?;
            let cfg = m.config.clone();
            Box::new(move |s| cfg.feature_size(s as usize) as i64)
        }
        (_, Some((stem, blocks, last, _))) => {
            let mut y = conv_bn(&mut b, &x, stem)?;
            for block in blocks {
                let mut z = y.clone();
                for l in &block.layers {
                    z = conv_bn(&mut b, &z, l)?;
                }
                y = if block.residual { b.add(&y, &z) } else { z };
            }
            conv_bn(&mut b, &y, last)?;
            Box::new(|s| (s + 31) / 32)
        }
        (_, None) => unreachable!("every family but DenseNet has the common parts"),
    };
    let head = model.head();
    let features = b.rename_last_output("features");
    let pooled = b.global_average_pool(&features);
    let flat = b.flatten(&pooled);
    let linear = &head.linear;
    let (classes, k) = linear.weight().dims2()?;
    if classes != info.classes.len() {
        bail!("the model has {classes} outputs but {} class names were given", info.classes.len());
    }
    let fc_w = b.weight(&format!("{}.weight", head.path), &[classes, k], &values(linear.weight())?);
    let fc_b = b.bias(&format!("{}.bias", head.path), &[classes], &values(linear.bias().context("linear layer without bias")?)?);
    b.gemm(&flat, &fc_w, &fc_b, true);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), (classes as i64).into()]);
    b.output("features", &[1.into(), (k as i64).into(), feature_size(h).into(), feature_size(w).into()]);
    b.describe(&Description {
        arch: Some(info.arch.name()),
        precision: info.precision,
        temperature: info.temperature,
        trained_on: Some(info.trained_on.clone()),
        ..Description::new(info.classes.clone(), info.input.clone())
    });
    Ok(b.to_bytes())
}

/// Largest |Δlogit| between tract on `bytes` and the trainer, relative to the
/// largest |logit|, over `inputs` (preprocessed `[3,H,W]` tensors).
pub fn verify(bytes: &[u8], model: &Model, inputs: &[Vec<f32>]) -> Result<f32> {
    verify_against(bytes, inputs, |xs| Ok(model.forward_t(xs, false)?))
}

/// [`verify`] against any forward pass of the trainer's.
fn verify_against(bytes: &[u8], inputs: &[Vec<f32>], forward: impl Fn(&Tensor) -> Result<Tensor>) -> Result<f32> {
    let package = ModelPackage::read(bytes, &LoadOptions::default()).context("the exported file does not load")?;
    let cpu = mriscreen::backend::CpuBackend::load(&package).context("tract cannot load the exported file")?;
    let spec = &package.info.input;
    let mut worst = 0f32;
    for input in inputs {
        let ours = cpu.run(input)?.logits;
        let xs = Tensor::from_vec(input.clone(), (1, 3, spec.height, spec.width), &Device::Cpu)?;
        let want: Vec<f32> = forward(&xs)?.flatten_all()?.to_vec1()?;
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let diff = ours.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        worst = worst.max(diff / scale);
    }
    Ok(worst)
}

/// Exports, verifies against tract, then writes `path` (atomically);
/// returns the file's bytes and the verification's relative difference.
pub fn export(model: &Model, info: &ExportInfo, inputs: &[Vec<f32>], path: &Path) -> Result<(Vec<u8>, f32)> {
    let bytes = to_onnx(model, info)?;
    let diff = verify(&bytes, model, inputs)?;
    let tolerance = match info.precision {
        Precision::Fp32 => 1e-4,
        _ => bail!("export of {} weights comes with the compression issue; export fp32", info.precision),
    };
    if !(diff <= tolerance) {
        bail!("the exported model disagrees with the trainer: max |Δlogit| is {diff:.2e} of the logit scale (tolerance {tolerance:.0e}); nothing was written");
    }
    crate::files::write_atomic(path, &bytes)?;
    Ok((bytes, diff))
}

/// Exports a model trained quantization-aware (`train --qat`): the fp32
/// export, then `quantize` with the same scheme — which stores exactly the
/// weights the training saw fake-quantized, since both call
/// `mriscreen::model::quant` on the same folded values — then tract on the
/// file must match the trainer's quantization-aware forward pass within
/// 1e-4 of the logit scale, or nothing is written. `parent_sha256` names the
/// fp32 model the training started from, if it was a file.
pub fn export_quantized(
    model: &Model,
    info: &ExportInfo,
    precision: Precision,
    scheme: mriscreen::model::quant::Scheme,
    parent_sha256: Option<String>,
    inputs: &[Vec<f32>],
    path: &Path,
) -> Result<(Vec<u8>, f32, crate::quantize::Report)> {
    let fp32 = to_onnx(model, &ExportInfo { precision: Precision::Fp32, ..info.clone() })?;
    let opts = crate::quantize::Options { precision, scheme, calib: Vec::new(), bias_correction: false, method: "qat", parent_sha256 };
    let (bytes, report) = crate::quantize::quantize(&fp32, &LoadOptions::default(), &opts)?;
    let diff = verify_against(&bytes, inputs, |xs| Ok(model.forward_qat(xs, scheme, false)?))?;
    if !(diff <= 1e-4) {
        bail!("the quantized export disagrees with quantization-aware training: max |Δlogit| is {diff:.2e} of the logit scale (tolerance 1e-4); nothing was written");
    }
    crate::files::write_atomic(path, &bytes)?;
    Ok((bytes, diff, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};

    fn info(arch: Arch, size: usize) -> ExportInfo {
        ExportInfo {
            arch,
            classes: mriscreen::CLASSES.iter().map(|c| c.to_string()).collect(),
            input: InputSpec { width: size, height: size, ..InputSpec::default() },
            precision: Precision::Fp32,
            temperature: 1.0,
            trained_on: "test".into(),
        }
    }

    /// Every tensor initializer of the exported file (the scalar Clip bounds
    /// aside) is a candle parameter path, or `{path}.bias` of a conv whose
    /// `{path}.weight` is one (its BatchNorm folded in): the conv weights,
    /// DenseNet's pre-activation BatchNorms and the classifier keep their
    /// names, so weights map both ways; and every layer appears.
    #[test]
    fn initializer_names_are_the_parameter_paths() {
        for arch in [Arch::MobileNetV2 { alpha: 0.35 }, Arch::EfficientNetLite0, Arch::DenseNet(mriscreen::arch::DenseNet::D32)] {
            let varmap = VarMap::new();
            let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), arch, 4, 0).unwrap();
            let proto = ModelPackage::read(&to_onnx(&model, &info(arch, 64)).unwrap(), &LoadOptions::default()).unwrap().proto;
            let params: std::collections::BTreeSet<String> = varmap.data().lock().unwrap().keys().cloned().collect();
            let names: std::collections::BTreeSet<String> = proto.graph.unwrap().initializer.iter().filter(|t| !t.dims.is_empty()).map(|t| t.name.clone()).collect();
            for name in &names {
                let (path, kind) = name.rsplit_once('.').unwrap();
                let folded_bias = kind == "bias" && params.contains(&format!("{path}.weight"));
                assert!(params.contains(name) || folded_bias, "{arch}: {name} names no candle parameter");
            }
            // Every conv (weight and folded bias) and the classifier are there.
            let folded: Vec<&ConvBn> = match &model {
                Model::DenseNet(m) => m.conv_bns(),
                _ => {
                    let (stem, blocks, last, _) = model.parts().unwrap();
                    std::iter::once(stem).chain(blocks.iter().flat_map(|b| &b.layers)).chain(std::iter::once(last)).collect()
                }
            };
            for c in &folded {
                assert!(names.contains(&format!("{}.weight", c.path())) && names.contains(&format!("{}.bias", c.path())), "{arch}: {}", c.path());
            }
            let head = model.head();
            assert!(names.contains(&format!("{}.weight", head.path)) && names.contains(&format!("{}.bias", head.path)));
            let mut want = 2 * folded.len() + 2;
            if let Model::DenseNet(m) = &model {
                for n in m.norms() {
                    assert!(names.contains(&format!("{}.running_var", n.path)), "{}", n.path);
                }
                want += 4 * m.norms().len() + m.plain_convs().len();
            }
            assert_eq!(names.len(), want, "{arch}");
        }
    }

    /// A DenseNet (trained one step, so the BatchNorm statistics are not
    /// the initial ones) exports, tract runs it and agrees with candle, and
    /// the file initialises a fresh model to the same outputs.
    #[test]
    fn densenet_exports_verifies_and_loads_back() {
        let arch = Arch::DenseNet(mriscreen::arch::DenseNet::D32);
        let varmap = VarMap::new();
        let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), arch, 4, 0).unwrap();
        let batch = crate::models::testing::rand(&[4, 3, 64, 64], 1, -1.0, 1.0);
        model.forward_t(&batch, true).unwrap();
        let mut rng = mriscreen::rng::Rng::new(2);
        let inputs: Vec<Vec<f32>> = (0..2).map(|_| rng.vec(3 * 64 * 64, -1.0, 1.0)).collect();
        let bytes = to_onnx(&model, &info(arch, 64)).unwrap();
        let diff = verify(&bytes, &model, &inputs).unwrap();
        assert!(diff <= 1e-4, "tract differs from candle by {diff:.2e} of the logit scale");
        let fresh = Model::new(VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu), arch, 4, 9).unwrap();
        let m = match &model { Model::DenseNet(m) => m, _ => unreachable!() };
        assert_eq!(crate::weights::load_onnx_into(&fresh, &bytes).unwrap(), m.conv_bns().len() + m.norms().len() + m.plain_convs().len() + 1);
        let x = Tensor::from_vec(inputs[0].clone(), (1, 3, 64, 64), &Device::Cpu).unwrap();
        let d = crate::models::testing::max_diff(&model.forward_t(&x, false).unwrap(), &fresh.forward_t(&x, false).unwrap());
        assert!(d < 1e-4, "{d}");
    }
}
