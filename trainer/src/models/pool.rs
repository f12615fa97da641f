//! Max pooling with padding and overlapping windows (DenseNet's stem: 3×3,
//! stride 2, padding 1), as a candle custom op with its own backward pass:
//! candle's `max_pool2d` has no padding and its backward pass refuses
//! kernels larger than the stride. Padding counts as −∞ (PyTorch's rule);
//! the gradient of each output goes to the first maximum of its window.

use super::depthwise::{contiguous, dims4, src, Geometry};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Max pooling of `[N, C, H, W]` with the window `g` (square).
pub fn max_pool(xs: &Tensor, g: Geometry) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(MaxPool(g))
}

struct MaxPool(Geometry);

/// Index (within the plane) of the first maximum of output (oy, ox)'s window.
fn argmax(plane: &[f32], (h, w): (usize, usize), (oy, ox): (usize, usize), g: &Geometry) -> usize {
    let mut best = (f32::NEG_INFINITY, usize::MAX);
    for ky in 0..g.kernel {
        let Some(y) = src(oy, ky, g, h) else { continue };
        for kx in 0..g.kernel {
            let Some(x) = src(ox, kx, g, w) else { continue };
            let i = y * w + x;
            if plane[i] > best.0 || best.1 == usize::MAX {
                best = (plane[i], i);
            }
        }
    }
    best.1
}

impl MaxPool {
    fn out_dims(&self, (n, c, h, w): (usize, usize, usize, usize)) -> Result<(usize, usize, usize, usize)> {
        let g = &self.0;
        if h + g.pad_begin + g.pad_end < g.kernel || w + g.pad_begin + g.pad_end < g.kernel {
            candle_core::bail!("max pool: input {h}×{w} is smaller than the {}×{} window", g.kernel, g.kernel);
        }
        Ok((n, c, g.out_size(h), g.out_size(w)))
    }
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "max pool: input")?;
        let d = dims4(l, "max pool: input")?;
        let o = self.out_dims(d)?;
        let (hw, ohw) = (d.2 * d.3, o.2 * o.3);
        let mut y = vec![0f32; o.0 * o.1 * ohw];
        y.par_chunks_mut(ohw).zip(x.par_chunks(hw)).for_each(|(out, plane)| {
            for (i, v) in out.iter_mut().enumerate() {
                *v = plane[argmax(plane, (d.2, d.3), (i / o.3, i % o.3), &self.0)];
            }
        });
        Ok((CpuStorage::F32(y), Shape::from(o)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad_res.contiguous()?, &MaxPoolBackward(self.0))?))
    }
}

/// From the input and the output gradient: the input gradient.
struct MaxPoolBackward(Geometry);

impl CustomOp2 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max-pool-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dy) = (contiguous(s1, l1, "max pool: input")?, contiguous(s2, l2, "max pool: gradient")?);
        let d = dims4(l1, "max pool: input")?;
        let o = MaxPool(self.0).out_dims(d)?;
        if dims4(l2, "max pool: gradient")? != o {
            candle_core::bail!("max pool: gradient {:?} for an output {o:?}", l2.dims());
        }
        let (hw, ohw) = (d.2 * d.3, o.2 * o.3);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(hw).zip(x.par_chunks(hw).zip(dy.par_chunks(ohw))).for_each(|(out, (plane, g))| {
            for (i, &gv) in g.iter().enumerate() {
                out[argmax(plane, (d.2, d.3), (i / o.3, i % o.3), &self.0)] += gv;
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::{max_diff, rand};
    use candle_core::{Device, Var};

    /// Forward and backward against candle's own max pool on an input padded
    /// with a value below every element (−∞ padding) — candle's backward
    /// handles kernel = stride only, so the reference takes every 3×3
    /// window apart as nine strided 1×1 slices and takes their maximum.
    #[test]
    fn matches_a_reference_with_minus_infinity_padding() {
        let g = Geometry { kernel: 3, stride: 2, pad_begin: 1, pad_end: 1 };
        for (h, w) in [(7, 7), (8, 6), (3, 3)] {
            // Negative values: zero padding would win where −∞ must not.
            let x = Var::from_tensor(&rand(&[2, 3, h, w], 5, -4.0, -1.0)).unwrap();
            let ours = max_pool(x.as_tensor(), g).unwrap();
            let (oh, ow) = (g.out_size(h), g.out_size(w));
            assert_eq!(ours.dims(), &[2, 3, oh, ow]);
            let padded = x.as_tensor().pad_with_same(2, 1, 1).unwrap().pad_with_same(3, 1, 1).unwrap();
            let mut want: Option<Tensor> = None;
            for ky in 0..3 {
                for kx in 0..3 {
                    // Rows ky, ky+2, … and columns kx, kx+2, … of the padded input.
                    let rows: Vec<u32> = (0..oh).map(|i| (ky + 2 * i) as u32).collect();
                    let cols: Vec<u32> = (0..ow).map(|i| (kx + 2 * i) as u32).collect();
                    let r = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
                    let c = Tensor::new(cols.as_slice(), &Device::Cpu).unwrap();
                    let tap = padded.index_select(&r, 2).unwrap().index_select(&c, 3).unwrap();
                    want = Some(match want {
                        None => tap,
                        Some(m) => m.maximum(&tap).unwrap(),
                    });
                }
            }
            let want = want.unwrap();
            // Edge replication equals −∞ padding for a maximum over a window
            // that always holds the replicated pixel itself.
            assert!(max_diff(&ours, &want) < 1e-6, "{h}×{w}: forward");
            // Gradient: every output's weight lands on its window's maximum.
            let probe = rand(ours.dims(), 6, 0.5, 1.5);
            let grads = (&ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = grads.get(x.as_tensor()).unwrap();
            let total = |t: &Tensor| t.sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!((total(dx) - total(&probe)).abs() < 1e-3, "{h}×{w}: gradient mass");
            let xv: Vec<f32> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let dv: Vec<f32> = dx.flatten_all().unwrap().to_vec1().unwrap();
            let yv: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
            for (i, &d) in dv.iter().enumerate() {
                if d != 0.0 {
                    assert!(yv.contains(&xv[i]), "{h}×{w}: gradient at {i}, which is no window's maximum");
                }
            }
        }
    }
}
