//! ONNX export per the contract in DESIGN.md, through the shared graph
//! builder: BatchNorm folded into each convolution (w·γ/√(σ²+ε), β − μ·γ/√(σ²+ε)),
//! ReLU6 as Clip(0, 6), residual Adds, a `features` output (the last feature
//! map) and `logits` from GlobalAveragePool → Flatten → Gemm, plus the
//! `mriscreen.*` metadata. Initializer names follow the model's parameter
//! paths. The export verifies itself: tract runs the file on validation
//! inputs and its logits must equal the trainer's within 1e-4 of the logit
//! scale, or nothing is written.

use crate::models::layers::{Act, ConvBn};
use crate::models::{Arch, Model};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use mriscreen::model::builder::{ConvAttrs, GraphBuilder};
use mriscreen::model::{keys, LoadOptions, ModelPackage, Precision};
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

/// Emits one ConvBn with its BatchNorm folded in; returns the output name.
fn conv_bn(b: &mut GraphBuilder, x: &str, layer: &ConvBn, name: &str) -> Result<String> {
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
    let bname = b.constant(&format!("{name}.bias"), &[out], &bias);
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
    let mut y = conv_bn(&mut b, &x, stem, "stem")?;
    for (i, block) in blocks.iter().enumerate() {
        let mut z = y.clone();
        for (j, l) in block.layers.iter().enumerate() {
            z = conv_bn(&mut b, &z, l, &format!("blocks.{i}.{j}"))?;
        }
        y = if block.residual { b.add(&y, &z) } else { z };
    }
    conv_bn(&mut b, &y, last, "head_conv")?;
    let features = b.rename_last_output("features");
    let pooled = b.global_average_pool(&features);
    let flat = b.flatten(&pooled);
    let linear = &head.linear;
    let (classes, k) = linear.weight().dims2()?;
    if classes != info.classes.len() {
        bail!("the model has {classes} outputs but {} class names were given", info.classes.len());
    }
    let fc_w = b.weight("classifier.weight", &[classes, k], &values(linear.weight())?);
    let fc_b = b.constant("classifier.bias", &[classes], &values(linear.bias().context("linear layer without bias")?)?);
    b.gemm(&flat, &fc_w, &fc_b, true);
    b.rename_last_output("logits");
    b.output("logits", &[1.into(), (classes as i64).into()]);
    let hw = |s: i64| (s + 31) / 32;
    b.output("features", &[1.into(), (k as i64).into(), hw(h).into(), hw(w).into()]);
    let json = |v: &[f32]| serde_json::to_string(v).unwrap_or_default();
    b.metadata(keys::CLASSES, &serde_json::to_string(&info.classes)?);
    b.metadata(keys::INPUT_SIZE, &if h == w { h.to_string() } else { format!("{w}x{h}") });
    b.metadata(keys::MEAN, &json(&info.input.mean));
    b.metadata(keys::STD, &json(&info.input.std));
    b.metadata(keys::RESIZE, "letterbox");
    b.metadata(keys::INTENSITY, "robust");
    b.metadata(keys::ARCH, &info.arch.name());
    b.metadata(keys::PRECISION, &info.precision.to_string());
    b.metadata(keys::TEMPERATURE, &info.temperature.to_string());
    b.metadata(keys::TRAINED_ON, &info.trained_on);
    Ok(b.to_bytes())
}

/// Largest |Δlogit| between tract on `bytes` and the trainer, relative to the
/// largest |logit|, over `inputs` (preprocessed `[3,H,W]` tensors).
pub fn verify(bytes: &[u8], model: &Model, inputs: &[Vec<f32>]) -> Result<f32> {
    let package = ModelPackage::read(bytes, &LoadOptions::default()).context("the exported file does not load")?;
    let cpu = mriscreen::backend::CpuBackend::load(&package).context("tract cannot load the exported file")?;
    let spec = &package.info.input;
    let mut worst = 0f32;
    for input in inputs {
        let ours = cpu.run(input)?.logits;
        let xs = Tensor::from_vec(input.clone(), (1, 3, spec.height, spec.width), &Device::Cpu)?;
        let want: Vec<f32> = model.forward_t(&xs, false)?.flatten_all()?.to_vec1()?;
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
    let tmp = path.with_extension("onnx.tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok((bytes, diff))
}
