//! Bias correction (Nagel et al. 2019, "Data-Free Quantization Through
//! Weight Equalization and Bias Correction", §4.2, with the expectations
//! measured on calibration images instead of derived from BatchNorm): a
//! linear layer's quantization error shifts its output by ΔW · E[x] on
//! average, so that much is taken off the bias. E[x] is the per-channel mean
//! of the layer's input over the calibration images and all positions, from
//! the fp32 model on tract. For convolutions the shift is summed over the
//! kernel's taps; border positions, where padding feeds zeros, are treated
//! like the interior (a small approximation).

use anyhow::{Context, Result};
use mriscreen::model::pb::ModelProto;
use std::collections::HashMap;
use tract_onnx::prelude::*;

/// Per-channel means (axis 1) of the named values over `inputs`
/// (preprocessed images of shape `shape`), from the model on tract.
pub fn channel_means(model: &ModelProto, shape: [usize; 4], inputs: &[Vec<f32>], values: &[String]) -> Result<HashMap<String, Vec<f64>>> {
    let names: Vec<&str> = values.iter().map(String::as_str).collect();
    let plan = tract_onnx::onnx()
        .model_for_proto_model(model)
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(|m| m.with_outputs_by_name(&names))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("running the fp32 model for bias correction")?;
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); values.len()];
    for input in inputs {
        let x = Tensor::from_shape(&shape, input).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let out = plan.run(tvec!(x.into_tvalue())).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        for (k, t) in out.iter().enumerate() {
            let view = t.to_plain_array_view::<f32>().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let dims = view.shape().to_vec();
            let (channels, per) = match dims.as_slice() {
                [_, c, rest @ ..] => (*c, rest.iter().product::<usize>()),
                _ => anyhow::bail!("value `{}` has shape {dims:?}; expected [N, C, ...]", values[k]),
            };
            let flat: Vec<f32> = view.iter().copied().collect();
            let rows = flat.len() / (channels * per).max(1);
            let acc = &mut sums[k];
            acc.resize(channels, 0.0);
            for r in 0..rows {
                for (c, s) in acc.iter_mut().enumerate() {
                    let start = (r * channels + c) * per;
                    *s += flat[start..start + per].iter().map(|&v| f64::from(v)).sum::<f64>() / (per * rows) as f64;
                }
            }
        }
    }
    let n = inputs.len().max(1) as f64;
    Ok(values.iter().cloned().zip(sums.into_iter().map(|v| v.into_iter().map(|s| s / n).collect())).collect())
}

/// The output shift E[ŷ − y] per output channel of a layer whose weights
/// (`dims`, `axes`) changed by `delta`, with input channel means `mean`;
/// `groups` > 1 for grouped convolutions (`[O, I/groups, kh, kw]`).
pub fn output_shift(delta: &[f32], dims: &[usize], axes: mriscreen::model::quant::Axes, groups: usize, mean: &[f64]) -> Option<Vec<f64>> {
    let out = *dims.get(axes.out)?;
    let inp = *dims.get(axes.inp)?;
    let taps: usize = dims.iter().skip(2).product();
    let mut shift = vec![0f64; out];
    if axes.out == 0 {
        // [O, I/groups, taps...]
        let per_group = out / groups.max(1);
        for (o, s) in shift.iter_mut().enumerate() {
            let first = (o / per_group.max(1)) * inp;
            for i in 0..inp {
                let m = *mean.get(first + i)?;
                let d: f64 = delta[(o * inp + i) * taps..(o * inp + i + 1) * taps].iter().map(|&v| f64::from(v)).sum();
                *s += d * m;
            }
        }
    } else {
        // [K, N]
        for k in 0..inp {
            let m = *mean.get(k)?;
            for (n, s) in shift.iter_mut().enumerate() {
                *s += f64::from(delta[k * out + n]) * m;
            }
        }
    }
    Some(shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mriscreen::model::quant::Axes;

    #[test]
    fn shift_is_delta_times_mean() {
        // Conv [2, 2, 1, 2], one group: o0 = Σ taps(Δ[0,i])·m_i.
        let delta = [1.0, 1.0, 0.5, 0.0, -1.0, 0.0, 0.0, 2.0];
        let s = output_shift(&delta, &[2, 2, 1, 2], Axes::OUT_FIRST, 1, &[1.0, 2.0]).unwrap();
        assert_eq!(s, vec![2.0 + 0.5 * 2.0, -1.0 + 2.0 * 2.0]);
        // Depthwise [2, 1, 1, 1] with 2 groups: each output sees its own channel.
        let s = output_shift(&[1.0, 1.0], &[2, 1, 1, 1], Axes::OUT_FIRST, 2, &[3.0, 5.0]).unwrap();
        assert_eq!(s, vec![3.0, 5.0]);
        // MatMul [K=2, N=1].
        let s = output_shift(&[1.0, -1.0], &[2, 1], Axes::IN_FIRST, 1, &[4.0, 1.0]).unwrap();
        assert_eq!(s, vec![3.0]);
        assert!(output_shift(&[1.0], &[1, 2, 1, 1], Axes::OUT_FIRST, 1, &[1.0]).is_none(), "too few means");
    }
}
