//! Depthwise 2-D convolution as a candle `CustomOp2` with its own backward.
//!
//! candle runs a grouped convolution as one convolution per group, which for
//! MobileNet-style depthwise layers (groups = channels, 3×3 or 5×5 kernels)
//! means hundreds of tiny im2col + GEMM calls per layer. Here a depthwise
//! layer is three direct loops over (batch, channel) planes, parallel with
//! rayon: the forward pass, the input gradient (a transposed depthwise
//! convolution of the output gradient), and the weight gradient (a
//! correlation of input and output gradient, summed over the batch).
//! CPU and f32 only; on other devices the model falls back to candle's
//! grouped convolution.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Geometry of one depthwise convolution (square kernel, symmetric padding
/// unless `pad_end` differs; TF-"same" layers pad one more at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: usize,
    pub stride: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
}

impl Geometry {
    pub fn out_size(&self, input: usize) -> usize {
        (input + self.pad_begin + self.pad_end - self.kernel) / self.stride + 1
    }
}

/// y = depthwise(x, w): x `[N,C,H,W]`, w `[C,1,k,k]` → y `[N,C,Ho,Wo]`.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, g: Geometry) -> Result<Tensor> {
    x.apply_op2(w, Forward(g))
}

struct Forward(Geometry);
struct InputGrad {
    g: Geometry,
    h: usize,
    w: usize,
}
struct WeightGrad(Geometry);

pub(super) fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{what} must be f32"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

pub(super) fn dims4(l: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    match l.dims() {
        [a, b, c, d] => Ok((*a, *b, *c, *d)),
        other => candle_core::bail!("{what} must be 4-D (NCHW), got {other:?}"),
    }
}

/// Input row/column for output position `o` and kernel tap `k`, if inside.
#[inline]
pub(super) fn src(o: usize, k: usize, g: &Geometry, size: usize) -> Option<usize> {
    (o * g.stride + k).checked_sub(g.pad_begin).filter(|&i| i < size)
}

/// The output positions `lo..hi` (of `out` in all) whose tap `k` reads
/// inside an input of `size`: the inner loops then run without branches.
#[inline]
pub(super) fn valid(k: usize, g: &Geometry, size: usize, out: usize) -> (usize, usize) {
    // ix = o·s + k − pad ∈ [0, size)
    let lo = g.pad_begin.saturating_sub(k).div_ceil(g.stride);
    let hi = if size + g.pad_begin > k { ((size + g.pad_begin - k - 1) / g.stride + 1).min(out) } else { 0 };
    (lo.min(hi), hi)
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, w) = (contiguous(s1, l1, "depthwise conv: input")?, contiguous(s2, l2, "depthwise conv: weight")?);
        let (n, c, h, wd) = dims4(l1, "depthwise conv: input")?;
        let (wc, one, kh, kw) = dims4(l2, "depthwise conv: weight")?;
        if wc != c || one != 1 || kh != g.kernel || kw != g.kernel {
            candle_core::bail!("depthwise conv: weight {:?} does not fit input {:?}", l2.dims(), l1.dims());
        }
        let (ho, wo) = (g.out_size(h), g.out_size(wd));
        Ok((CpuStorage::F32(forward(x, w, (n, c, h, wd), g)), Shape::from((n, c, ho, wo))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, grad_y: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, wd) = x.dims4()?;
        let grad_y = grad_y.contiguous()?;
        let gx = grad_y.apply_op2_no_bwd(&w.contiguous()?, &InputGrad { g: self.0, h, w: wd })?;
        let gw = x.contiguous()?.apply_op2_no_bwd(&grad_y, &WeightGrad(self.0))?;
        Ok((Some(gx), Some(gw)))
    }
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-input-grad"
    }

    /// s1 = grad_y `[N,C,Ho,Wo]`, s2 = w `[C,1,k,k]` → grad_x `[N,C,H,W]`.
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, h, wd) = (self.g, self.h, self.w);
        let (gy, w) = (contiguous(s1, l1, "depthwise conv: output gradient")?, contiguous(s2, l2, "depthwise conv: weight")?);
        let (n, c, _, _) = dims4(l1, "depthwise conv: output gradient")?;
        Ok((CpuStorage::F32(input_grad(gy, w, (n, c, h, wd), g)), Shape::from((n, c, h, wd))))
    }
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-weight-grad"
    }

    /// s1 = x `[N,C,H,W]`, s2 = grad_y `[N,C,Ho,Wo]` → grad_w `[C,1,k,k]`.
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (x, gy) = (contiguous(s1, l1, "depthwise conv: input")?, contiguous(s2, l2, "depthwise conv: output gradient")?);
        let (n, c, h, wd) = dims4(l1, "depthwise conv: input")?;
        let k = g.kernel;
        Ok((CpuStorage::F32(weight_grad(x, gy, (n, c, h, wd), g)), Shape::from((c, 1, k, k))))
    }
}

/// A plane's columns regrouped by their remainder modulo the stride, so that
/// a strided tap reads (or writes) one contiguous run and the inner loops
/// vectorise: column s·j + p lives at phase p, index j; row iy of phase p
/// starts at (p·h + iy)·pw. With stride 1 this is the plane itself.
#[derive(Clone, Copy)]
struct Phases {
    s: usize,
    h: usize,
    w: usize,
    pw: usize,
}

impl Phases {
    fn new(g: &Geometry, h: usize, w: usize) -> Self {
        Phases { s: g.stride, h, w, pw: w.div_ceil(g.stride) }
    }

    fn len(&self) -> usize {
        self.s * self.h * self.pw
    }

    /// Offset of the input column that output column `lo` reads through tap `kx`.
    fn start(&self, g: &Geometry, iy: usize, kx: usize, lo: usize) -> usize {
        let col = lo * self.s + kx - g.pad_begin;
        (col % self.s * self.h + iy) * self.pw + col / self.s
    }

    fn split(&self, plane: &[f32], out: &mut [f32]) {
        for (iy, row) in plane.chunks(self.w).enumerate() {
            for (col, &v) in row.iter().enumerate() {
                out[(col % self.s * self.h + iy) * self.pw + col / self.s] = v;
            }
        }
    }

    fn merge(&self, split: &[f32], plane: &mut [f32]) {
        for (iy, row) in plane.chunks_mut(self.w).enumerate() {
            for (col, v) in row.iter_mut().enumerate() {
                *v = split[(col % self.s * self.h + iy) * self.pw + col / self.s];
            }
        }
    }
}

/// The forward kernel on raw NCHW data: x `[N,C,H,W]` (dims), w `[C,1,k,k]`.
pub(super) fn forward(x: &[f32], w: &[f32], (n, c, h, wd): (usize, usize, usize, usize), g: Geometry) -> Vec<f32> {
    let (ho, wo) = (g.out_size(h), g.out_size(wd));
    let k = g.kernel;
    let ph = Phases::new(&g, h, wd);
    let mut y = vec![0f32; n * c * ho * wo];
    y.par_chunks_mut(ho * wo).enumerate().for_each_init(
        || vec![0f32; if g.stride > 1 { ph.len() } else { 0 }],
        |split, (plane, out)| {
            let ch = plane % c;
            let xp = &x[plane * h * wd..(plane + 1) * h * wd];
            let xp = if g.stride > 1 {
                ph.split(xp, split);
                &split[..]
            } else {
                xp
            };
            let wp = &w[ch * k * k..(ch + 1) * k * k];
            for oy in 0..ho {
                let out_row = &mut out[oy * wo..(oy + 1) * wo];
                for ky in 0..k {
                    let Some(iy) = src(oy, ky, &g, h) else { continue };
                    for kx in 0..k {
                        let wv = wp[ky * k + kx];
                        let (lo, hi) = valid(kx, &g, wd, wo);
                        if lo == hi {
                            continue;
                        }
                        let start = ph.start(&g, iy, kx, lo);
                        for (o, &v) in out_row[lo..hi].iter_mut().zip(&xp[start..start + (hi - lo)]) {
                            *o += wv * v;
                        }
                    }
                }
            }
        },
    );
    y
}

/// The input gradient from the output gradient `gy` `[N,C,Ho,Wo]`; dims are the input's.
pub(super) fn input_grad(gy: &[f32], w: &[f32], (n, c, h, wd): (usize, usize, usize, usize), g: Geometry) -> Vec<f32> {
    let (ho, wo) = (g.out_size(h), g.out_size(wd));
    let k = g.kernel;
    let ph = Phases::new(&g, h, wd);
    let mut gx = vec![0f32; n * c * h * wd];
    gx.par_chunks_mut(h * wd).enumerate().for_each_init(
        || vec![0f32; if g.stride > 1 { ph.len() } else { 0 }],
        |split, (plane, out)| {
            let ch = plane % c;
            let gp = &gy[plane * ho * wo..(plane + 1) * ho * wo];
            let wp = &w[ch * k * k..(ch + 1) * k * k];
            // With a stride, accumulate in phase order, then put columns back.
            let acc: &mut [f32] = if g.stride > 1 {
                split.fill(0.0);
                split
            } else {
                out
            };
            for oy in 0..ho {
                let grow = &gp[oy * wo..(oy + 1) * wo];
                for ky in 0..k {
                    let Some(iy) = src(oy, ky, &g, h) else { continue };
                    for kx in 0..k {
                        let wv = wp[ky * k + kx];
                        let (lo, hi) = valid(kx, &g, wd, wo);
                        if lo == hi {
                            continue;
                        }
                        let start = ph.start(&g, iy, kx, lo);
                        for (o, &gv) in acc[start..start + (hi - lo)].iter_mut().zip(&grow[lo..hi]) {
                            *o += wv * gv;
                        }
                    }
                }
            }
            if g.stride > 1 {
                ph.merge(split, out);
            }
        },
    );
    gx
}

/// Σ a·b in eight independent lanes (a plain `.sum()` is one serial chain
/// of additions, which the compiler may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The weight gradient `[C,1,k,k]` from input `x` and output gradient `gy`; dims are the input's.
pub(super) fn weight_grad(x: &[f32], gy: &[f32], (n, c, h, wd): (usize, usize, usize, usize), g: Geometry) -> Vec<f32> {
    let (ho, wo) = (g.out_size(h), g.out_size(wd));
    let k = g.kernel;
    let ph = Phases::new(&g, h, wd);
    let mut gw = vec![0f32; c * k * k];
    gw.par_chunks_mut(k * k).enumerate().for_each_init(
        || vec![0f32; if g.stride > 1 { ph.len() } else { 0 }],
        |split, (ch, out)| {
            for b in 0..n {
                let plane = b * c + ch;
                let xp = &x[plane * h * wd..(plane + 1) * h * wd];
                let xp = if g.stride > 1 {
                    ph.split(xp, split);
                    &split[..]
                } else {
                    xp
                };
                let gp = &gy[plane * ho * wo..(plane + 1) * ho * wo];
                for oy in 0..ho {
                    let grow = &gp[oy * wo..(oy + 1) * wo];
                    for ky in 0..k {
                        let Some(iy) = src(oy, ky, &g, h) else { continue };
                        for kx in 0..k {
                            let (lo, hi) = valid(kx, &g, wd, wo);
                            if lo == hi {
                                continue;
                            }
                            let start = ph.start(&g, iy, kx, lo);
                            out[ky * k + kx] += dot(&grow[lo..hi], &xp[start..start + (hi - lo)]);
                        }
                    }
                }
            }
        },
    );
    gw
}

/// True when `depthwise_conv2d` can run these tensors (CPU, f32).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let v = mriscreen::rng::Rng::new(seed).vec(n, -1.0, 1.0);
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// candle's own grouped convolution, padded asymmetrically if needed.
    fn reference(x: &Tensor, w: &Tensor, g: Geometry) -> Tensor {
        let c = x.dim(1).unwrap();
        let x = x.pad_with_zeros(2, g.pad_begin, g.pad_end).unwrap().pad_with_zeros(3, g.pad_begin, g.pad_end).unwrap();
        x.conv2d(w, 0, g.stride, 1, c).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    const CASES: [Geometry; 4] = [
        Geometry { kernel: 3, stride: 1, pad_begin: 1, pad_end: 1 },
        Geometry { kernel: 3, stride: 2, pad_begin: 1, pad_end: 1 },
        Geometry { kernel: 5, stride: 2, pad_begin: 1, pad_end: 2 },
        Geometry { kernel: 3, stride: 2, pad_begin: 0, pad_end: 1 },
    ];

    #[test]
    fn forward_matches_candle_grouped_conv() {
        for (i, g) in CASES.into_iter().enumerate() {
            let x = rand(&[2, 5, 9, 8], i as u64);
            let w = rand(&[5, 1, g.kernel, g.kernel], 100 + i as u64);
            let ours = depthwise_conv2d(&x, &w, g).unwrap();
            let want = reference(&x, &w, g);
            assert_eq!(ours.dims(), want.dims(), "{g:?}");
            assert!(max_diff(&ours, &want) < 1e-5, "{g:?}");
        }
    }

    #[test]
    fn gradients_match_candle_grouped_conv() {
        for (i, g) in CASES.into_iter().enumerate() {
            let x = Var::from_tensor(&rand(&[2, 4, 7, 9], 10 + i as u64)).unwrap();
            let w = Var::from_tensor(&rand(&[4, 1, g.kernel, g.kernel], 20 + i as u64)).unwrap();
            // A non-uniform upstream gradient: weight the outputs before summing.
            let probe = |y: &Tensor| (y * rand(y.dims(), 30).as_ref()).unwrap().sum_all().unwrap();
            let ours = probe(&depthwise_conv2d(x.as_tensor(), w.as_tensor(), g).unwrap()).backward().unwrap();
            let want = probe(&reference(x.as_tensor(), w.as_tensor(), g)).backward().unwrap();
            for v in [&x, &w] {
                let (a, b) = (ours.get(v.as_tensor()).unwrap(), want.get(v.as_tensor()).unwrap());
                assert!(max_diff(a, b) < 1e-4, "{g:?}: {}", max_diff(a, b));
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let g = Geometry { kernel: 3, stride: 2, pad_begin: 1, pad_end: 1 };
        let x = rand(&[1, 2, 5, 5], 1);
        let w = rand(&[2, 1, 3, 3], 2);
        let loss = |x: &Tensor, w: &Tensor| -> f32 {
            let y = depthwise_conv2d(x, w, g).unwrap();
            (y.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()) / 2.0
        };
        let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let y = depthwise_conv2d(xv.as_tensor(), wv.as_tensor(), g).unwrap();
        let grads = (y.sqr().unwrap().sum_all().unwrap() / 2.0).unwrap().backward().unwrap();
        let eps = 1e-2f32;
        for (t, var, is_x) in [(&x, &xv, true), (&w, &wv, false)] {
            let analytic: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            for i in (0..base.len()).step_by(3) {
                let bump = |d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    let t2 = Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap();
                    if is_x { loss(&t2, &w) } else { loss(&x, &t2) }
                };
                let numeric = (bump(eps) - bump(-eps)) / (2.0 * eps);
                assert!((numeric - analytic[i]).abs() < 2e-2 * (1.0 + numeric.abs()), "{}[{i}]: {numeric} vs {}", if is_x { "x" } else { "w" }, analytic[i]);
            }
        }
    }
}
