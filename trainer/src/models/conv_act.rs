//! A frozen-BatchNorm convolution layer — convolution with the BatchNorm
//! folded into its weight and bias, then an activation — as one candle
//! custom op with its own backward pass: what quantization-aware training
//! runs for every layer (`ConvBn::forward_qat`), for the reason
//! [`super::fused`] explains (composed from candle ops the same layer trained
//! at 2 images/s and needed 20 GB at batch 32). The backward pass needs only
//! the output: the activation's gate is open where lo < y < hi (0 and 6 for
//! ReLU6), and then
//!   g = gate · dy,  db = Σ g,  and the convolution's backward on g
//! gives dx (unless x is a leaf such as the image batch) and dw.

use super::fused::{dims4, slice, Conv};
use super::layers::Act;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct ConvBiasAct {
    conv: Conv,
    act: Act,
}

/// act(conv(x, w) + b), `b`: `[C]`.
pub fn conv_bias_act(x: &Tensor, w: &Tensor, b: &Tensor, conv: Conv, act: Act) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, ConvBiasAct { conv, act })
}

impl CustomOp3 for ConvBiasAct {
    fn name(&self) -> &'static str {
        "conv-bias-act"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?, slice(s3, l3, "bias")?);
        let (xd, wd) = (dims4(l1, "input")?, dims4(l2, "weight")?);
        self.conv.check(xd, wd)?;
        let zd = self.conv.out_dims(xd, wd.0);
        if b.len() != zd.1 {
            candle_core::bail!("conv-bias-act: {} biases for {} channels", b.len(), zd.1);
        }
        let mut y = self.conv.forward(x, w, xd, wd.0);
        let hw = zd.2 * zd.3;
        let (lo, hi) = self.act.bounds();
        y.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
            let bias = b[p % zd.1];
            for v in plane {
                *v = (*v + bias).max(lo).min(hi);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from(zd)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let need_dx = x.track_op();
        // First the gate: [g | db], from the output alone.
        let packed = y.contiguous()?.apply_op2_no_bwd(&dy.contiguous()?, &Gate { act: self.act })?;
        let (lx, lw) = (if need_dx { x.elem_count() } else { 0 }, w.elem_count());
        let dgx = packed.narrow(0, 0, packed.elem_count() - b.elem_count())?;
        let db = packed.narrow(0, packed.elem_count() - b.elem_count(), b.elem_count())?;
        // The convolution's backward needs x: a second op with the gated gradient.
        let g = dgx.reshape(y.shape())?;
        let conv_back = ConvBackward { conv: self.conv, need_dx, cout: w.dim(0)? };
        let grads = x.contiguous()?.apply_op3_no_bwd(w, &g, &conv_back)?;
        let dx = if need_dx { Some(grads.narrow(0, 0, lx)?.reshape(x.shape())?) } else { None };
        let dw = grads.narrow(0, lx, lw)?.reshape(w.shape())?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// From y and dy: the gated gradient g (y's shape, flattened) and db.
struct Gate {
    act: Act,
}

impl CustomOp2 for Gate {
    fn name(&self) -> &'static str {
        "conv-bias-act-gate"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, dy) = (slice(s1, l1, "output")?, slice(s2, l2, "gradient")?);
        let (_, c, h, w) = dims4(l1, "output")?;
        if y.len() != dy.len() {
            candle_core::bail!("conv-bias-act: gradient of {} values for an output of {}", dy.len(), y.len());
        }
        let hw = h * w;
        let (lo, hi) = self.act.bounds();
        let mut g = vec![0f32; y.len() + c];
        let (gated, db) = g.split_at_mut(y.len());
        gated.par_chunks_mut(hw).zip(y.par_chunks(hw).zip(dy.par_chunks(hw))).for_each(|(out, (yp, dp))| {
            for ((o, &v), &d) in out.iter_mut().zip(yp).zip(dp) {
                // `&` rather than `&&`: no branch in the loop.
                *o = if (v > lo) & (v < hi) { d } else { 0.0 };
            }
        });
        let sums: Vec<f64> = gated.par_chunks(hw).map(|p| p.iter().map(|&v| f64::from(v)).sum()).collect();
        for (p, s) in sums.iter().enumerate() {
            db[p % c] += *s as f32;
        }
        let len = g.len();
        Ok((CpuStorage::F32(g), Shape::from(len)))
    }
}

/// The convolution's backward on the gated gradient: [dx (if needed) | dw].
struct ConvBackward {
    conv: Conv,
    need_dx: bool,
    cout: usize,
}

impl CustomOp3 for ConvBackward {
    fn name(&self) -> &'static str {
        "conv-bias-act-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?, slice(s3, l3, "gradient")?);
        let (dx, dw) = self.conv.backward(x, w, g, dims4(l1, "input")?, self.cout, self.need_dx);
        let mut out = dx.unwrap_or_default();
        out.extend_from_slice(&dw);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::depthwise::Geometry;
    use candle_core::Var;

    use crate::models::testing::{max_diff, rand};

    /// Output and the gradients of x, w and b equal candle's composition, for
    /// pointwise, depthwise and general convolutions, for every activation.
    #[test]
    fn matches_candle() {
        let geo = |kernel, stride, pad_begin, pad_end| Geometry { kernel, stride, pad_begin, pad_end };
        let cases = [
            (Conv::Pointwise, (2, 5, 6, 6), (7, 5, 1, 1)),
            (Conv::Depthwise(geo(3, 2, 1, 1)), (2, 4, 7, 7), (4, 1, 3, 3)),
            (Conv::General(geo(3, 1, 1, 1)), (2, 3, 6, 5), (6, 3, 3, 3)),
        ];
        for (conv, xs, ws) in cases {
            for act in [Act::None, Act::Relu, Act::Relu6] {
                let x = Var::from_tensor(&rand(&[xs.0, xs.1, xs.2, xs.3], 1, -3.0, 3.0)).unwrap();
                let w = Var::from_tensor(&rand(&[ws.0, ws.1, ws.2, ws.3], 2, -1.5, 1.5)).unwrap();
                let cout = if matches!(conv, Conv::Depthwise(_)) { xs.1 } else { ws.0 };
                let b = Var::from_tensor(&rand(&[cout], 3, -1.0, 4.0)).unwrap();
                let ours = conv_bias_act(x.as_tensor(), w.as_tensor(), b.as_tensor(), conv, act).unwrap();
                let groups = if matches!(conv, Conv::Depthwise(_)) { xs.1 } else { 1 };
                let (pad, stride) = match conv {
                    Conv::Pointwise => (0, 1),
                    Conv::Depthwise(g) | Conv::General(g) => (g.pad_begin, g.stride),
                };
                let z = x.as_tensor().conv2d(w.as_tensor(), pad, stride, 1, groups).unwrap();
                let t = z.broadcast_add(&b.as_tensor().reshape((1, cout, 1, 1)).unwrap()).unwrap();
                let want = act.apply(&t).unwrap();
                assert!(max_diff(&ours, &want) < 1e-4, "{conv:?} {act:?}: forward");
                // A loss that weights every output differently.
                let weights = rand(ours.dims(), 4, -1.0, 1.0);
                let ga = (&ours * &weights).unwrap().sum_all().unwrap().backward().unwrap();
                let gb = (&want * &weights).unwrap().sum_all().unwrap().backward().unwrap();
                for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
                    let (a, e) = (ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
                    assert!(max_diff(a, e) < 1e-3, "{conv:?} {act:?}: d{name} differs by {}", max_diff(a, e));
                }
            }
        }
    }
}
