//! A training-mode convolution layer — convolution, BatchNorm with batch
//! statistics (Ioffe & Szegedy 2015), an activation (none, ReLU or ReLU6) —
//! as one candle custom op with its own backward pass.
//!
//! Why one op: candle's backward pass adds every gradient into a freshly
//! zeroed tensor, so each node of the graph costs an allocation and two full
//! passes over its activation on top of its real work, and BatchNorm alone
//! is ~8 nodes. Profiling MobileNetV2 training showed this bookkeeping, not
//! the arithmetic, dominating. Here a layer is one node; its forward pass keeps
//! the convolution output `z` and the per-channel statistics, and its
//! backward pass runs, with x̂ = (z − μ)·σ⁻¹, M = N·H·W and g the output
//! gradient masked where the activation clamps:
//!   dβ = Σ g,  dγ = Σ g·x̂,  dz = γ·σ⁻¹/M · (M·g − dβ − x̂·dγ),
//! then the convolution's own backward (two GEMMs for a pointwise
//! convolution, the direct kernels of [`depthwise`] for a depthwise one,
//! im2col + GEMMs otherwise). The input gradient is skipped when the input
//! is a leaf such as the image batch (candle would compute it anyway).
//! Grouped convolutions other than depthwise run through candle and only
//! the BatchNorm + activation part is fused ([`bn_act`]), as it is for
//! DenseNet's pre-activation BatchNorm.
//!
//! CPU, f32, NCHW only; the caller checks [`depthwise::supported`].

use super::depthwise::{self, Geometry};
use super::layers::Act;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// The convolution in front of the BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// 1×1, stride 1, no padding, no groups: a matrix product per image.
    Pointwise,
    /// One filter per channel.
    Depthwise(Geometry),
    /// Any other ungrouped convolution: im2col, then a matrix product per image.
    General(Geometry),
}

/// Output of a fused layer, plus the batch statistics it normalised with
/// (`[2, C]`: mean, biased variance) for the running averages.
pub struct Fused {
    pub y: Tensor,
    pub stats: Tensor,
}

/// act(batchnorm(conv(x, w))) with batch statistics. `gamma`, `beta`: `[C]`.
pub fn conv_bn_act(x: &Tensor, w: &Tensor, gamma: &Tensor, beta: &Tensor, conv: Conv, eps: f64, act: Act) -> Result<Fused> {
    let saved = Saved::default();
    let gb = Tensor::cat(&[gamma, beta], 0)?;
    let op = ConvBnAct { conv, bn: Bn { eps, act }, saved: saved.clone() };
    let y = x.contiguous()?.apply_op3(&w.contiguous()?, &gb, op)?;
    Ok(Fused { y, stats: saved.stats()? })
}

/// act(batchnorm(z)) with batch statistics: for convolutions candle runs,
/// and for DenseNet's pre-activation BatchNorm, which has no convolution
/// in front of it.
pub fn bn_act(z: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, act: Act) -> Result<Fused> {
    let saved = Saved::default();
    let gb = Tensor::cat(&[gamma, beta], 0)?;
    let y = z.contiguous()?.apply_op2(&gb, BnAct { bn: Bn { eps, act }, saved: saved.clone() })?;
    Ok(Fused { y, stats: saved.stats()? })
}

/// The op's storages as contiguous f32 slices and NCHW dimensions.
pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    depthwise::contiguous(s, l, &format!("fused layer: {what}"))
}

pub(super) fn dims4(l: &Layout, what: &str) -> Result<(usize, usize, usize, usize)> {
    depthwise::dims4(l, &format!("fused layer: {what}"))
}

/// γ and β, `[2C]`, must match the `c` channels being normalised.
fn check_params(gb: &[f32], c: usize) -> Result<()> {
    if gb.len() != 2 * c {
        candle_core::bail!("fused layer: {} BatchNorm parameters for {c} channels", gb.len());
    }
    Ok(())
}

/// What the forward pass leaves for the backward pass.
struct State {
    /// The convolution output (for [`BnAct`], the input is `z` and this is empty).
    z: Vec<f32>,
    mean: Vec<f64>,
    var: Vec<f64>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    /// `z`'s dimensions, NCHW.
    dims: (usize, usize, usize, usize),
}

#[derive(Clone, Default)]
struct Saved(Arc<Mutex<Option<Arc<State>>>>);

impl Saved {
    fn put(&self, s: State) -> Result<()> {
        *self.0.lock().map_err(|_| candle_core::Error::Msg("fused layer state poisoned".into()))? = Some(Arc::new(s));
        Ok(())
    }

    fn get(&self) -> Result<Arc<State>> {
        let guard = self.0.lock().map_err(|_| candle_core::Error::Msg("fused layer state poisoned".into()))?;
        guard.clone().ok_or_else(|| candle_core::Error::Msg("fused layer: backward before forward".into()))
    }

    fn stats(&self) -> Result<Tensor> {
        let s = self.get()?;
        let v: Vec<f32> = s.mean.iter().chain(&s.var).map(|&v| v as f32).collect();
        Tensor::from_vec(v, (2, s.mean.len()), &candle_core::Device::Cpu)
    }
}

/// BatchNorm + activation on raw planes.
#[derive(Clone, Copy)]
struct Bn {
    eps: f64,
    act: Act,
}

/// Σ(v − shift) and Σ(v − shift)² of one plane: f32 in eight lanes over
/// short blocks (so the compiler vectorises), f64 across blocks.
fn plane_sums(p: &[f32], shift: f32) -> (f64, f64) {
    let (mut s, mut q) = (0f64, 0f64);
    for block in p.chunks(512) {
        let (mut ls, mut lq) = ([0f32; 8], [0f32; 8]);
        let mut lanes = block.chunks_exact(8);
        for c in &mut lanes {
            for i in 0..8 {
                let d = c[i] - shift;
                ls[i] += d;
                lq[i] += d * d;
            }
        }
        for &v in lanes.remainder() {
            let d = v - shift;
            ls[0] += d;
            lq[0] += d * d;
        }
        s += ls.iter().map(|&v| f64::from(v)).sum::<f64>();
        q += lq.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    (s, q)
}

impl Bn {
    /// Per-channel mean and biased variance of `z` `[N,C,HW]`.
    fn stats(z: &[f32], (n, c, hw): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
        // Shift each channel by one of its values so the sums do not cancel.
        let shifts: Vec<f32> = (0..c).map(|ch| z[ch * hw]).collect();
        let planes: Vec<(f64, f64)> = z.par_chunks(hw).enumerate().map(|(p, v)| plane_sums(v, shifts[p % c])).collect();
        let m = (n * hw) as f64;
        (0..c)
            .map(|ch| {
                let (s, q) = (0..n).map(|b| planes[b * c + ch]).fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
                let mean = s / m;
                (f64::from(shifts[ch]) + mean, (q / m - mean * mean).max(0.0))
            })
            .unzip()
    }

    fn scale_shift(&self, s: &State, ch: usize) -> (f32, f32) {
        let scale = f64::from(s.gamma[ch]) / (s.var[ch] + self.eps).sqrt();
        (scale as f32, (f64::from(s.beta[ch]) - s.mean[ch] * scale) as f32)
    }

    /// Batch statistics of `z`, then y = act(z·scale + shift).
    /// The returned state's `z` is empty: the caller keeps `z` if it must.
    fn forward(&self, z: &[f32], gb: &[f32], dims: (usize, usize, usize, usize)) -> (Vec<f32>, State) {
        let (n, c, h, w) = dims;
        let hw = h * w;
        let (mean, var) = Bn::stats(z, (n, c, hw));
        let s = State { z: Vec::new(), mean, var, gamma: gb[..c].to_vec(), beta: gb[c..2 * c].to_vec(), dims };
        let mut y = vec![0f32; z.len()];
        let (lo, hi) = self.act.bounds();
        y.par_chunks_mut(hw).zip(z.par_chunks(hw)).enumerate().for_each(|(p, (out, zp))| {
            let (scale, shift) = self.scale_shift(&s, p % c);
            for (o, &v) in out.iter_mut().zip(zp) {
                *o = (v * scale + shift).max(lo).min(hi);
            }
        });
        (y, s)
    }

    /// dz, and [dγ | dβ], from the upstream gradient `dy` and `z`.
    fn backward(&self, s: &State, z: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (n, c, h, w) = s.dims;
        let hw = h * w;
        let m = (n * hw) as f64;
        let inv: Vec<f64> = s.var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        // The gradient that passes the activation: zero where it clamped.
        let (lo, hi) = self.act.bounds();
        let gate = |ch: usize| {
            let (scale, shift) = self.scale_shift(s, ch);
            move |zv: f32, d: f32| {
                let t = zv * scale + shift;
                // `&` rather than `&&`: no branch in the loop.
                if (t > lo) & (t < hi) { d } else { 0.0 }
            }
        };
        // Per plane: Σ g and Σ g·(z − μ).
        let planes: Vec<(f64, f64)> = z
            .par_chunks(hw)
            .zip(dy.par_chunks(hw))
            .enumerate()
            .map(|(p, (zp, dp))| {
                let ch = p % c;
                let (g, mu) = (gate(ch), s.mean[ch] as f32);
                let (mut sg, mut sgz) = (0f64, 0f64);
                for (zb, db) in zp.chunks(512).zip(dp.chunks(512)) {
                    let (mut a, mut b) = ([0f32; 8], [0f32; 8]);
                    let (zl, dl) = (zb.chunks_exact(8), db.chunks_exact(8));
                    let tail = zl.remainder().iter().zip(dl.remainder());
                    for (zc, dc) in zl.zip(dl) {
                        for i in 0..8 {
                            let gv = g(zc[i], dc[i]);
                            a[i] += gv;
                            b[i] += gv * (zc[i] - mu);
                        }
                    }
                    for (&zv, &d) in tail {
                        let gv = g(zv, d);
                        a[0] += gv;
                        b[0] += gv * (zv - mu);
                    }
                    sg += a.iter().map(|&v| f64::from(v)).sum::<f64>();
                    sgz += b.iter().map(|&v| f64::from(v)).sum::<f64>();
                }
                (sg, sgz)
            })
            .collect();
        let mut dgb = vec![0f32; 2 * c];
        // dz = A·g + B·(z − μ) + C per channel.
        let coef: Vec<(f32, f32, f32)> = (0..c)
            .map(|ch| {
                let (db, dgz) = (0..n).map(|b| planes[b * c + ch]).fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
                let dg = dgz * inv[ch];
                dgb[ch] = dg as f32;
                dgb[c + ch] = db as f32;
                let a = f64::from(s.gamma[ch]) * inv[ch];
                (a as f32, (-a * inv[ch] * dg / m) as f32, (-a * db / m) as f32)
            })
            .collect();
        let mut dz = vec![0f32; z.len()];
        dz.par_chunks_mut(hw).zip(z.par_chunks(hw).zip(dy.par_chunks(hw))).enumerate().for_each(|(p, (out, (zp, dp)))| {
            let ch = p % c;
            let (g, mu, (a, b, k)) = (gate(ch), s.mean[ch] as f32, coef[ch]);
            for ((o, &zv), &d) in out.iter_mut().zip(zp).zip(dp) {
                *o = a * g(zv, d) + b * (zv - mu) + k;
            }
        });
        (dz, dgb)
    }
}

/// Row-major matrix view: `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: isize,
    cs: isize,
}

impl<'a> Mat<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: cols as isize, cs: 1 }
    }
    fn transposed(data: &'a [f32], cols_of_stored: usize) -> Self {
        Mat { data, rs: 1, cs: cols_of_stored as isize }
    }
}

/// dst (m×n, row-major) = a (m×k) · b (k×n), plus dst if `accumulate`.
/// Single-threaded: callers parallelise over images.
fn matmul(dst: &mut [f32], (m, n, k): (usize, usize, usize), a: Mat, b: Mat, accumulate: bool) {
    assert!(dst.len() >= m * n, "matmul: destination too small");
    let span = |x: &Mat, r: usize, c: usize| (r.max(1) - 1) * x.rs as usize + (c.max(1) - 1) * x.cs as usize;
    assert!(k == 0 || (span(&a, m, k) < a.data.len() && span(&b, k, n) < b.data.len()), "matmul: operand too small");
    // SAFETY: the asserts above keep every index the kernel touches inside
    // the slices; dst is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m, n, k,
            dst.as_mut_ptr(), 1, n as isize, accumulate,
            a.data.as_ptr(), a.cs, a.rs,
            b.data.as_ptr(), b.cs, b.rs,
            1.0, 1.0, false, false, false,
            gemm::Parallelism::None,
        );
    }
}

impl Conv {
    pub(super) fn out_dims(&self, (n, c, h, w): (usize, usize, usize, usize), cout: usize) -> (usize, usize, usize, usize) {
        match self {
            Conv::Pointwise => (n, cout, h, w),
            Conv::Depthwise(g) => (n, c, g.out_size(h), g.out_size(w)),
            Conv::General(g) => (n, cout, g.out_size(h), g.out_size(w)),
        }
    }

    /// Checks `w` `[Cout, Cin/groups, k, k]` against the input channels.
    pub(super) fn check(&self, x: (usize, usize, usize, usize), w: (usize, usize, usize, usize)) -> Result<()> {
        let ok = match self {
            Conv::Pointwise => w.1 == x.1 && (w.2, w.3) == (1, 1),
            Conv::Depthwise(g) => w.0 == x.1 && w.1 == 1 && (w.2, w.3) == (g.kernel, g.kernel),
            Conv::General(g) => w.1 == x.1 && (w.2, w.3) == (g.kernel, g.kernel),
        };
        if !ok {
            candle_core::bail!("fused layer: weight {w:?} does not fit input {x:?} for {self:?}");
        }
        Ok(())
    }

    pub(super) fn forward(&self, x: &[f32], w: &[f32], xd: (usize, usize, usize, usize), cout: usize) -> Vec<f32> {
        match *self {
            Conv::Depthwise(g) => depthwise::forward(x, w, xd, g),
            Conv::Pointwise => {
                let (_, cin, h, wd) = xd;
                let hw = h * wd;
                let mut z = vec![0f32; xd.0 * cout * hw];
                z.par_chunks_mut(cout * hw).zip(x.par_chunks(cin * hw)).for_each(|(zb, xb)| {
                    matmul(zb, (cout, hw, cin), Mat::rows(w, cin), Mat::rows(xb, hw), false);
                });
                z
            }
            Conv::General(g) => {
                let (_, cin, h, wd) = xd;
                let (ho, wo) = (g.out_size(h), g.out_size(wd));
                let ckk = cin * g.kernel * g.kernel;
                let mut z = vec![0f32; xd.0 * cout * ho * wo];
                z.par_chunks_mut(cout * ho * wo).zip(x.par_chunks(cin * h * wd)).for_each(|(zb, xb)| {
                    let cols = im2col(xb, (cin, h, wd), g);
                    matmul(zb, (cout, ho * wo, ckk), Mat::rows(w, ckk), Mat::rows(&cols, ho * wo), false);
                });
                z
            }
        }
    }

    /// (dx if `need_dx`, dw) from dz.
    pub(super) fn backward(&self, x: &[f32], w: &[f32], dz: &[f32], xd: (usize, usize, usize, usize), cout: usize, need_dx: bool) -> (Option<Vec<f32>>, Vec<f32>) {
        match *self {
            Conv::Depthwise(g) => (need_dx.then(|| depthwise::input_grad(dz, w, xd, g)), depthwise::weight_grad(x, dz, xd, g)),
            Conv::Pointwise => {
                let (_, cin, h, wd) = xd;
                let hw = h * wd;
                // dx_b = wᵀ · dz_b
                let dx = need_dx.then(|| {
                    let mut dx = vec![0f32; x.len()];
                    dx.par_chunks_mut(cin * hw).zip(dz.par_chunks(cout * hw)).for_each(|(xb, zb)| {
                        matmul(xb, (cin, hw, cout), Mat::transposed(w, cin), Mat::rows(zb, hw), false);
                    });
                    dx
                });
                // dw = Σ_b dz_b · x_bᵀ, a partial sum per worker.
                let dw = dz
                    .par_chunks(cout * hw)
                    .zip(x.par_chunks(cin * hw))
                    .fold(
                        || vec![0f32; cout * cin],
                        |mut acc, (zb, xb)| {
                            matmul(&mut acc, (cout, cin, hw), Mat::rows(zb, hw), Mat::transposed(xb, hw), true);
                            acc
                        },
                    )
                    .reduce(|| vec![0f32; cout * cin], add_into);
                (dx, dw)
            }
            Conv::General(g) => {
                let (_, cin, h, wd) = xd;
                let how = g.out_size(h) * g.out_size(wd);
                let ckk = cin * g.kernel * g.kernel;
                // dw = Σ_b dz_b · cols_bᵀ, with each image's columns rebuilt.
                let dw = dz
                    .par_chunks(cout * how)
                    .zip(x.par_chunks(cin * h * wd))
                    .fold(
                        || vec![0f32; cout * ckk],
                        |mut acc, (zb, xb)| {
                            let cols = im2col(xb, (cin, h, wd), g);
                            matmul(&mut acc, (cout, ckk, how), Mat::rows(zb, how), Mat::transposed(&cols, how), true);
                            acc
                        },
                    )
                    .reduce(|| vec![0f32; cout * ckk], add_into);
                // dx_b = col2im(wᵀ · dz_b)
                let dx = need_dx.then(|| {
                    let mut dx = vec![0f32; x.len()];
                    dx.par_chunks_mut(cin * h * wd).zip(dz.par_chunks(cout * how)).for_each(|(xb, zb)| {
                        let mut cols = vec![0f32; ckk * how];
                        matmul(&mut cols, (ckk, how, cout), Mat::transposed(w, ckk), Mat::rows(zb, how), false);
                        col2im(&cols, xb, (cin, h, wd), g);
                    });
                    dx
                });
                (dx, dw)
            }
        }
    }
}

fn add_into(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    a
}

/// One image `[C,H,W]` unfolded to `[C·k·k, Ho·Wo]`: row (c, ky, kx) holds the
/// input pixel each output position reads through that tap, 0 in the padding.
fn im2col(x: &[f32], (c, h, w): (usize, usize, usize), g: Geometry) -> Vec<f32> {
    let (ho, wo, k) = (g.out_size(h), g.out_size(w), g.kernel);
    let mut cols = vec![0f32; c * k * k * ho * wo];
    for (r, row) in cols.chunks_mut(ho * wo).enumerate() {
        let (ch, ky, kx) = (r / (k * k), r / k % k, r % k);
        let (lo, hi) = depthwise::valid(kx, &g, w, wo);
        for oy in 0..ho {
            let Some(iy) = depthwise::src(oy, ky, &g, h) else { continue };
            let src = &x[(ch * h + iy) * w..(ch * h + iy + 1) * w];
            for ox in lo..hi {
                row[oy * wo + ox] = src[ox * g.stride + kx - g.pad_begin];
            }
        }
    }
    cols
}

/// The adjoint of [`im2col`]: adds each column entry back onto its pixel.
fn col2im(cols: &[f32], x: &mut [f32], (_, h, w): (usize, usize, usize), g: Geometry) {
    let (ho, wo, k) = (g.out_size(h), g.out_size(w), g.kernel);
    for (r, row) in cols.chunks(ho * wo).enumerate() {
        let (ch, ky, kx) = (r / (k * k), r / k % k, r % k);
        let (lo, hi) = depthwise::valid(kx, &g, w, wo);
        for oy in 0..ho {
            let Some(iy) = depthwise::src(oy, ky, &g, h) else { continue };
            let dst = &mut x[(ch * h + iy) * w..(ch * h + iy + 1) * w];
            for ox in lo..hi {
                dst[ox * g.stride + kx - g.pad_begin] += row[oy * wo + ox];
            }
        }
    }
}

struct ConvBnAct {
    conv: Conv,
    bn: Bn,
    saved: Saved,
}

impl CustomOp3 for ConvBnAct {
    fn name(&self) -> &'static str {
        "conv-bn-act"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, gb) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?, slice(s3, l3, "gamma/beta")?);
        let (xd, wd) = (dims4(l1, "input")?, dims4(l2, "weight")?);
        self.conv.check(xd, wd)?;
        let zd = self.conv.out_dims(xd, wd.0);
        check_params(gb, zd.1)?;
        let z = self.conv.forward(x, w, xd, wd.0);
        let (y, mut state) = self.bn.forward(&z, gb, zd);
        state.z = z;
        self.saved.put(state)?;
        Ok((CpuStorage::F32(y), Shape::from(zd)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, gb: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // A leaf input that is not a variable (the image batch) needs no gradient.
        let need_dx = x.track_op();
        let back = ConvBnActBackward { conv: self.conv, bn: self.bn, state: self.saved.get()?, need_dx };
        let packed = x.apply_op3_no_bwd(w, &dy.contiguous()?, &back)?;
        // Packed as [dx (if needed) | dw | dγ dβ].
        let (lx, lw) = (if need_dx { x.elem_count() } else { 0 }, w.elem_count());
        let dx = if need_dx { Some(packed.narrow(0, 0, lx)?.reshape(x.shape())?) } else { None };
        let dw = packed.narrow(0, lx, lw)?.reshape(w.shape())?;
        let dgb = packed.narrow(0, lx + lw, gb.elem_count())?;
        Ok((dx, Some(dw), Some(dgb)))
    }
}

struct ConvBnActBackward {
    conv: Conv,
    bn: Bn,
    state: Arc<State>,
    need_dx: bool,
}

impl CustomOp3 for ConvBnActBackward {
    fn name(&self) -> &'static str {
        "conv-bn-act-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, dy) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?, slice(s3, l3, "gradient")?);
        let s = &self.state;
        if dy.len() != s.z.len() {
            candle_core::bail!("fused layer: gradient of {} values for an output of {}", dy.len(), s.z.len());
        }
        let (dz, dgb) = self.bn.backward(s, &s.z, dy);
        let (dx, dw) = self.conv.backward(x, w, &dz, dims4(l1, "input")?, s.dims.1, self.need_dx);
        drop(dz);
        let mut out = dx.unwrap_or_default();
        out.extend_from_slice(&dw);
        out.extend_from_slice(&dgb);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

struct BnAct {
    bn: Bn,
    saved: Saved,
}

impl CustomOp2 for BnAct {
    fn name(&self) -> &'static str {
        "bn-act"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (z, gb) = (slice(s1, l1, "input")?, slice(s2, l2, "gamma/beta")?);
        let zd = dims4(l1, "input")?;
        check_params(gb, zd.1)?;
        // The input is z itself and stays alive in the graph: no copy kept.
        let (y, state) = self.bn.forward(z, gb, zd);
        self.saved.put(state)?;
        Ok((CpuStorage::F32(y), Shape::from(zd)))
    }

    fn bwd(&self, z: &Tensor, gb: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let back = BnActBackward { bn: self.bn, state: self.saved.get()? };
        let packed = z.apply_op2_no_bwd(&dy.contiguous()?, &back)?;
        let lz = z.elem_count();
        let dz = packed.narrow(0, 0, lz)?.reshape(z.shape())?;
        let dgb = packed.narrow(0, lz, gb.elem_count())?;
        Ok((Some(dz), Some(dgb)))
    }
}

struct BnActBackward {
    bn: Bn,
    state: Arc<State>,
}

impl CustomOp2 for BnActBackward {
    fn name(&self) -> &'static str {
        "bn-act-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (z, dy) = (slice(s1, l1, "input")?, slice(s2, l2, "gradient")?);
        if z.len() != dy.len() {
            candle_core::bail!("fused layer: gradient of {} values for an input of {}", dy.len(), z.len());
        }
        let (mut dz, dgb) = self.bn.backward(&self.state, z, dy);
        dz.extend_from_slice(&dgb);
        let len = dz.len();
        Ok((CpuStorage::F32(dz), Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::models::testing::{max_diff, rand};

    /// The same layer composed from candle ops: the reference.
    fn reference(x: &Tensor, w: &Tensor, g: &Tensor, b: &Tensor, conv: Option<Conv>, eps: f64, act: Act) -> Tensor {
        let z = match conv {
            None => x.clone(),
            Some(Conv::Pointwise) => x.conv2d(w, 0, 1, 1, 1).unwrap(),
            Some(Conv::Depthwise(geo) | Conv::General(geo)) => {
                let groups = if matches!(conv, Some(Conv::Depthwise(_))) { x.dim(1).unwrap() } else { 1 };
                let xp = x.pad_with_zeros(2, geo.pad_begin, geo.pad_end).unwrap().pad_with_zeros(3, geo.pad_begin, geo.pad_end).unwrap();
                xp.conv2d(w, 0, geo.stride, 1, groups).unwrap()
            }
        };
        let c = z.dim(1).unwrap();
        let mean = z.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let zc = z.broadcast_sub(&mean).unwrap();
        let var = zc.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let xhat = zc.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
        let y = xhat.broadcast_mul(&g.reshape((1, c, 1, 1)).unwrap()).unwrap().broadcast_add(&b.reshape((1, c, 1, 1)).unwrap()).unwrap();
        act.apply(&y).unwrap()
    }

    /// Forward output, batch statistics and every gradient agree with candle's composition.
    #[test]
    fn fused_layers_match_candle() {
        let geo = |kernel, stride, pad_begin, pad_end| Geometry { kernel, stride, pad_begin, pad_end };
        let dw = |g| Some(Conv::Depthwise(g));
        let general = |g| Some(Conv::General(g));
        let cases = [
            (None, 4),
            (Some(Conv::Pointwise), 6),
            (dw(geo(3, 1, 1, 1)), 5),
            (dw(geo(3, 2, 1, 1)), 5),
            (dw(geo(5, 2, 1, 2)), 5),
            (general(geo(3, 2, 1, 1)), 4),
            (general(geo(3, 2, 0, 1)), 4),
            (general(geo(3, 1, 1, 1)), 2),
        ];
        for (i, (conv, cout)) in cases.into_iter().enumerate() {
            for act in [Act::None, Act::Relu, Act::Relu6] {
                let seed = 10 * i as u64;
                let cin = if matches!(conv, Some(Conv::Pointwise | Conv::General(_))) { 3 } else { cout };
                // An offset mean checks the shifted sums; ±3 puts values on both sides of 0 and 6.
                // Square inputs: candle's reference backward assumes equal output padding in both dimensions.
                let x = Var::from_tensor(&rand(&[2, cin, 7, 7], seed, 97.0, 103.0)).unwrap();
                let w = match conv {
                    Some(Conv::Pointwise) => Var::from_tensor(&rand(&[cout, cin, 1, 1], seed + 1, -1.0, 1.0)).unwrap(),
                    Some(Conv::General(g)) => Var::from_tensor(&rand(&[cout, cin, g.kernel, g.kernel], seed + 1, -1.0, 1.0)).unwrap(),
                    Some(Conv::Depthwise(g)) => Var::from_tensor(&rand(&[cout, 1, g.kernel, g.kernel], seed + 1, -1.0, 1.0)).unwrap(),
                    None => Var::from_tensor(&rand(&[1], 0, 0.0, 1.0)).unwrap(),
                };
                let g = Var::from_tensor(&rand(&[cout], seed + 2, 1.0, 3.0)).unwrap();
                let b = Var::from_tensor(&rand(&[cout], seed + 3, 1.0, 5.0)).unwrap();
                let (xt, wt, gt, bt) = (x.as_tensor(), w.as_tensor(), g.as_tensor(), b.as_tensor());
                let ours = match conv {
                    Some(c) => conv_bn_act(xt, wt, gt, bt, c, 1e-5, act).unwrap(),
                    None => bn_act(xt, gt, bt, 1e-5, act).unwrap(),
                };
                let want = reference(xt, wt, gt, bt, conv, 1e-5, act);
                let what = format!("{conv:?} {act:?}");
                assert_eq!(ours.y.dims(), want.dims(), "{what}");
                assert!(max_diff(&ours.y, &want) < 1e-4, "{what}: forward {}", max_diff(&ours.y, &want));
                assert_eq!(ours.stats.dims(), &[2, cout]);
                let probe = rand(want.dims(), seed + 4, -1.0, 1.0);
                let ga = (ours.y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let gb = (want * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let vars: Vec<&Var> = if conv.is_some() { vec![&x, &w, &g, &b] } else { vec![&x, &g, &b] };
                for (k, v) in vars.into_iter().enumerate() {
                    let (a, e) = (ga.get(v.as_tensor()).unwrap(), gb.get(v.as_tensor()).unwrap());
                    let scale = e.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap().max(1.0);
                    assert!(max_diff(a, e) < 1e-3 * scale, "{what}: gradient {k} differs by {} (scale {scale})", max_diff(a, e));
                }
            }
        }
    }

    /// The image batch is a leaf: no input gradient is computed for it, and
    /// the weight gradient is still right.
    #[test]
    fn a_leaf_input_gets_no_gradient() {
        let g = Geometry { kernel: 3, stride: 2, pad_begin: 1, pad_end: 1 };
        let x = rand(&[2, 3, 8, 8], 1, -1.0, 1.0);
        let w = Var::from_tensor(&rand(&[4, 3, 3, 3], 2, -1.0, 1.0)).unwrap();
        let gamma = Var::from_tensor(&rand(&[4], 3, 0.5, 1.5)).unwrap();
        let beta = Var::from_tensor(&rand(&[4], 4, -0.5, 0.5)).unwrap();
        let y = conv_bn_act(&x, w.as_tensor(), gamma.as_tensor(), beta.as_tensor(), Conv::General(g), 1e-5, Act::Relu6).unwrap().y;
        let probe = rand(y.dims(), 5, -1.0, 1.0);
        let ours = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(ours.get(&x).is_none());
        let want = (reference(&x, w.as_tensor(), gamma.as_tensor(), beta.as_tensor(), Some(Conv::General(g)), 1e-5, Act::Relu6) * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = max_diff(ours.get(w.as_tensor()).unwrap(), want.get(w.as_tensor()).unwrap());
        assert!(d < 1e-3, "weight gradient differs by {d}");
    }

    #[test]
    fn batch_statistics_are_the_per_channel_mean_and_variance() {
        let x = rand(&[3, 2, 4, 5], 1, -2.0, 3.0);
        let g = Tensor::ones(2, candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
        let st = bn_act(&x, &g, &b, 1e-5, Act::None).unwrap().stats;
        let flat = x.transpose(0, 1).unwrap().flatten_from(1).unwrap();
        let mean = flat.mean(1).unwrap();
        let var = flat.broadcast_sub(&mean.unsqueeze(1).unwrap()).unwrap().sqr().unwrap().mean(1).unwrap();
        assert!(max_diff(&st.get(0).unwrap(), &mean) < 1e-5);
        assert!(max_diff(&st.get(1).unwrap(), &var) < 1e-5);
    }

    #[test]
    fn a_weight_that_does_not_fit_is_an_error() {
        let x = rand(&[1, 3, 4, 4], 1, 0.0, 1.0);
        let w = rand(&[4, 2, 1, 1], 2, 0.0, 1.0);
        let g = rand(&[4], 3, 0.0, 1.0);
        let err = conv_bn_act(&x, &w, &g, &g, Conv::Pointwise, 1e-5, Act::Relu6).err().expect("mismatched weight must fail");
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
