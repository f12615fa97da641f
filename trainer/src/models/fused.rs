//! Fused training-mode BatchNorm (Ioffe & Szegedy 2015) and ReLU6 as candle
//! custom ops with their own backward passes.
//!
//! candle composes BatchNorm from ~8 tensor ops (transpose, copy, mean, sub,
//! square, mean, div, mul, add), each kept alive for backprop: for
//! MobileNetV2 at 224 px and batch 32 that is tens of gigabytes. Here the
//! forward pass is one op that keeps only its input, and the backward pass
//! recomputes the per-channel mean and inverse standard deviation from it:
//! with x̂ = (x − μ)·σ⁻¹, M = N·H·W,
//!   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·σ⁻¹/M · (M·dy − dβ − x̂·dγ).
//! ReLU6 likewise keeps its input and passes the gradient where 0 < x < 6.
//! CPU, f32, contiguous NCHW only; other cases use candle's composition.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(d) = s else { candle_core::bail!("fused op: {what} must be f32") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&d[a..b]),
        None => candle_core::bail!("fused op: {what} must be contiguous"),
    }
}

/// (N, C, H·W) of an NCHW layout.
fn nchw(l: &Layout) -> Result<(usize, usize, usize)> {
    match l.dims() {
        [n, c, h, w] => Ok((*n, *c, h * w)),
        d => candle_core::bail!("fused op: expected NCHW, got {d:?}"),
    }
}

/// Per-channel mean and biased variance, two-pass in f64.
fn stats(x: &[f32], n: usize, c: usize, hw: usize) -> Vec<(f64, f64)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let m = (n * hw) as f64;
            let planes = || (0..n).map(move |b| &x[(b * c + ch) * hw..(b * c + ch + 1) * hw]);
            let mean = planes().map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>()).sum::<f64>() / m;
            let var = planes().map(|p| p.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>()).sum::<f64>() / m;
            (mean, var)
        })
        .collect()
}

/// Per-channel mean and (biased) variance of an NCHW tensor, `[2, C]`, no gradient.
pub fn channel_stats(x: &Tensor) -> Result<Tensor> {
    x.apply_op1_no_bwd(&Stats)
}

struct Stats;

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "channel-stats"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l)?;
        let st = stats(slice(s, l, "input")?, n, c, hw);
        let mut out: Vec<f32> = st.iter().map(|s| s.0 as f32).collect();
        out.extend(st.iter().map(|s| s.1 as f32));
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }
}

/// Training-mode batch normalisation of `x` with batch statistics, scaled by
/// `gamma` and shifted by `beta`.
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(gamma, beta, BatchNorm { eps })
}

struct BatchNorm {
    eps: f64,
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let (x, g, b) = (slice(s1, l1, "input")?, slice(s2, l2, "gamma")?, slice(s3, l3, "beta")?);
        let st = stats(x, n, c, hw);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(hw).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let (mean, var) = st[ch];
            let scale = g[ch] as f64 / (var + self.eps).sqrt();
            let (scale, shift) = (scale as f32, (b[ch] as f64 - mean * scale) as f32);
            for (o, &v) in out.iter_mut().zip(&x[plane * hw..(plane + 1) * hw]) {
                *o = v * scale + shift;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, gamma: &Tensor, _beta: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let grads = x.apply_op3_no_bwd(&dy, gamma, &Backward { eps: self.eps })?;
        // Packed as [dx (N·C·H·W) | dγ (C) | dβ (C)].
        let (len, c) = (x.elem_count(), gamma.elem_count());
        let dx = grads.narrow(0, 0, len)?.reshape(x.shape())?;
        let dg = grads.narrow(0, len, c)?;
        let db = grads.narrow(0, len + c, c)?;
        Ok((Some(dx), Some(dg), Some(db)))
    }
}

struct Backward {
    eps: f64,
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "batch-norm-train-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = nchw(l1)?;
        let (x, dy, g) = (slice(s1, l1, "input")?, slice(s2, l2, "gradient")?, slice(s3, l3, "gamma")?);
        let st = stats(x, n, c, hw);
        let m = (n * hw) as f64;
        // Per channel: dβ = Σ dy, dγ = Σ dy·x̂.
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, var) = st[ch];
                let inv = 1.0 / (var + self.eps).sqrt();
                let (mut db, mut dg) = (0f64, 0f64);
                for b in 0..n {
                    let r = (b * c + ch) * hw..(b * c + ch + 1) * hw;
                    for (&xv, &d) in x[r.clone()].iter().zip(&dy[r]) {
                        db += f64::from(d);
                        dg += f64::from(d) * (f64::from(xv) - mean) * inv;
                    }
                }
                (db, dg)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        dx.par_chunks_mut(hw).enumerate().for_each(|(plane, o)| {
            let ch = plane % c;
            let (mean, var) = st[ch];
            let inv = 1.0 / (var + self.eps).sqrt();
            let (db, dg) = sums[ch];
            let k = f64::from(g[ch]) * inv / m;
            let r = plane * hw..(plane + 1) * hw;
            for ((o, &xv), &d) in o.iter_mut().zip(&x[r.clone()]).zip(&dy[r]) {
                let xhat = (f64::from(xv) - mean) * inv;
                *o = (k * (m * f64::from(d) - db - xhat * dg)) as f32;
            }
        });
        for ch in 0..c {
            rest[ch] = sums[ch].1 as f32;
            rest[c + ch] = sums[ch].0 as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * c)))
    }
}

/// min(max(x, 0), 6) with its gradient.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu6)
}

struct Relu6;
struct Relu6Backward;

impl CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "relu6"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "input")?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(1 << 14).zip(x.par_chunks(1 << 14)).for_each(|(o, i)| {
            for (o, &v) in o.iter_mut().zip(i) {
                *o = v.clamp(0.0, 6.0);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &Relu6Backward)?))
    }
}

impl candle_core::CustomOp2 for Relu6Backward {
    fn name(&self) -> &'static str {
        "relu6-backward"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (slice(s1, l1, "input")?, slice(s2, l2, "gradient")?);
        let dx: Vec<f32> = x.iter().zip(dy).map(|(&v, &d)| if v > 0.0 && v < 6.0 { d } else { 0.0 }).collect();
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn rand(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(mriscreen::model::random::Rng::new(seed).vec(n, lo, hi), shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// BatchNorm composed from candle ops, the reference.
    fn reference(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let c = x.dim(1).unwrap();
        let mean = x.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let xc = x.broadcast_sub(&mean).unwrap();
        let var = xc.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let xhat = xc.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
        xhat.broadcast_mul(&g.reshape((1, c, 1, 1)).unwrap()).unwrap().broadcast_add(&b.reshape((1, c, 1, 1)).unwrap()).unwrap()
    }

    #[test]
    fn batch_norm_forward_and_backward_match_candle() {
        let x = Var::from_tensor(&rand(&[3, 4, 5, 6], 1, -2.0, 3.0)).unwrap();
        let g = Var::from_tensor(&rand(&[4], 2, 0.5, 1.5)).unwrap();
        let b = Var::from_tensor(&rand(&[4], 3, -0.5, 0.5)).unwrap();
        let w = rand(&[3, 4, 5, 6], 4, -1.0, 1.0);
        let ours = batch_norm_train(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let want = reference(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5);
        assert!(max_diff(&ours, &want) < 1e-5);
        let ga = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (want * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &g, &b] {
            let d = max_diff(ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
            assert!(d < 1e-4, "{d}");
        }
        let st = channel_stats(x.as_tensor()).unwrap();
        let mean = x.as_tensor().transpose(0, 1).unwrap().flatten_from(1).unwrap().mean(D::Minus1).unwrap();
        assert!(max_diff(&st.get(0).unwrap(), &mean) < 1e-5);
    }

    #[test]
    fn relu6_and_its_gradient() {
        let x = Var::new(&[-1f32, 0.5, 3.0, 7.0], &Device::Cpu).unwrap();
        let y = relu6(x.as_tensor()).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![0.0, 0.5, 3.0, 6.0]);
        let g = (y * Tensor::new(&[1f32, 2.0, 3.0, 4.0], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), vec![0.0, 2.0, 3.0, 0.0]);
    }
}
