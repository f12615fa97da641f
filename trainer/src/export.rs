//! ONNX export per the contract in docs/architecture.md ("The ONNX contract"), through the shared graph
//! builder: BatchNorm folded into each convolution (w·γ/√(σ²+ε), β − μ·γ/√(σ²+ε)),
//! ReLU6 as Clip(0, 6), residual Adds, a `features` output (the last feature
//! map) and `logits` from GlobalAveragePool → Flatten → Gemm, plus the
//! `mriscreen.*` metadata. Each initializer is named after the parameter it
//! comes from: `{conv}.weight` and `{conv}.bias` are the conv at that path
//! with its BatchNorm folded in (candle's conv has no bias: the folded one
//! takes the name PyTorch would give it), and the classifier keeps its
//! linear layer's `{path}.weight` / `{path}.bias`, so each ONNX weight maps
//! to one candle / torchvision parameter path and back. The export verifies itself: tract runs the file on validation
//! inputs and its logits must equal the trainer's within 1e-4 of the logit
//! scale, or nothing is written.

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
        Act::Relu6 => b.clip(&y, 0.0, 6.0),
    })
}

/// Builds the ONNX bytes for `model`.
pub fn to_onnx(model: &Model, info: &ExportInfo) -> Result<Vec<u8>> {
    let (stem, blocks, last, head) = model.parts();
    let mut b = GraphBuilder::new(&info.arch.name()).with_precision(info.precision);
    let (h, w) = (info.input.height as i64, info.input.width as i64);
    let x = b.input("input", &[1.into(), 3.into(), h.into(), w.into()]);
    let mut y = conv_bn(&mut b, &x, stem)?;
    for block in blocks {
        let mut z = y.clone();
        for l in &block.layers {
            z = conv_bn(&mut b, &z, l)?;
        }
        y = if block.residual { b.add(&y, &z) } else { z };
    }
    conv_bn(&mut b, &y, last)?;
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
    let hw = |s: i64| (s + 31) / 32;
    b.output("features", &[1.into(), (k as i64).into(), hw(h).into(), hw(w).into()]);
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

    /// Every tensor initializer of the exported file (the scalar Clip bounds
    /// aside) is `{path}.weight` or
    /// `{path}.bias` of a candle parameter path: a conv (its BatchNorm folded
    /// in) or the classifier's linear layer; and every conv and the
    /// classifier appear, so weights map both ways.
    #[test]
    fn initializer_names_are_the_parameter_paths() {
        for arch in [Arch::MobileNetV2 { alpha: 0.35 }, Arch::EfficientNetLite0] {
            let varmap = VarMap::new();
            let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), arch, 4, 0).unwrap();
            let info = ExportInfo {
                arch,
                classes: mriscreen::CLASSES.iter().map(|c| c.to_string()).collect(),
                input: InputSpec { width: 64, height: 64, ..InputSpec::default() },
                precision: Precision::Fp32,
                temperature: 1.0,
                trained_on: "test".into(),
            };
            let proto = ModelPackage::read(&to_onnx(&model, &info).unwrap(), &LoadOptions::default()).unwrap().proto;
            let params: std::collections::BTreeSet<String> = varmap.data().lock().unwrap().keys().cloned().collect();
            let names: std::collections::BTreeSet<String> = proto.graph.unwrap().initializer.iter().filter(|t| !t.dims.is_empty()).map(|t| t.name.clone()).collect();
            for name in &names {
                let (path, kind) = name.rsplit_once('.').unwrap();
                assert!(kind == "weight" || kind == "bias", "{arch}: {name}");
                assert!(params.contains(&format!("{path}.weight")), "{arch}: {name} names no candle parameter");
            }
            // Every conv weight and the classifier are there (BatchNorm parameters are folded away).
            let (stem, blocks, last, head) = model.parts();
            let convs = std::iter::once(stem).chain(blocks.iter().flat_map(|b| &b.layers)).chain(std::iter::once(last));
            for c in convs {
                assert!(names.contains(&format!("{}.weight", c.path())) && names.contains(&format!("{}.bias", c.path())), "{arch}: {}", c.path());
            }
            assert!(names.contains(&format!("{}.weight", head.path)) && params.contains(&format!("{}.bias", head.path)));
            assert_eq!(names.len(), 2 * (blocks.iter().map(|b| b.layers.len()).sum::<usize>() + 3), "{arch}");
        }
    }
}
