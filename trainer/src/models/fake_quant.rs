//! Fake quantization for quantization-aware training (Jacob et al. 2018;
//! Krishnamoorthi 2018, §3): the forward pass replaces a weight by exactly
//! what the exported file will compute for it — `mriscreen::model::quant`'s
//! scheme and range setting, float16 scales and all — so training sees the
//! quantized model; the backward pass is the straight-through estimator
//! (Bengio et al. 2013): the gradient passes unchanged where the weight lies
//! inside its group's clipping range and is zero where it was clipped.
//! Biases go through float16 ([`round_f16`]) as the file stores them.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use mriscreen::model::quant::{self, Axes, Scheme};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

struct FakeQuant {
    scheme: Scheme,
    axes: Axes,
    /// The straight-through mask the forward pass found (1 inside the clipping range).
    mask: Arc<Mutex<Option<Vec<f32>>>>,
}

/// Quantized values and the clipping mask of `v` (shape `dims`). Groups
/// never span output channels, so with the output axis first the rows are
/// quantized in parallel chunks: the result is the same as in one piece.
fn quantize_with_mask(v: &[f32], dims: &[usize], axes: Axes, scheme: Scheme) -> (Vec<f32>, Vec<f32>) {
    let one = |v: &[f32], dims: &[usize]| {
        let q = quant::quantize(v, dims, axes, scheme);
        let index = q.grouping.scale_index(dims);
        let limit = scheme.qmax() + 0.5;
        let mask = v.iter().zip(&index).map(|(x, &g)| if x.abs() <= q.scales[g as usize].to_f32() * limit { 1.0 } else { 0.0 }).collect();
        (q.dequantized(), mask)
    };
    let rows = dims.first().copied().unwrap_or(1);
    if axes.out != 0 || rows < 2 || v.len() < 4096 {
        return one(v, dims);
    }
    let per_row = v.len() / rows;
    let chunk_rows = rows.div_ceil(rayon::current_num_threads().max(1) * 4);
    let parts: Vec<(Vec<f32>, Vec<f32>)> = v
        .par_chunks(chunk_rows * per_row)
        .map(|c| {
            let mut d = dims.to_vec();
            d[0] = c.len() / per_row;
            one(c, &d)
        })
        .collect();
    parts.into_iter().fold((Vec::with_capacity(v.len()), Vec::with_capacity(v.len())), |(mut a, mut m), (q, k)| {
        a.extend(q);
        m.extend(k);
        (a, m)
    })
}

fn values<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("fake quantization: weights must be f32") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("fake quantization: the weight must be contiguous"),
    }
}

impl CustomOp1 for FakeQuant {
    fn name(&self) -> &'static str {
        "fake-quantize"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (out, mask) = quantize_with_mask(values(s, l)?, l.dims(), self.axes, self.scheme);
        *self.mask.lock().map_err(|_| candle_core::Error::Msg("fake quantization state poisoned".into()))? = Some(mask);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, w: &Tensor, _q: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let mask = self.mask.lock().map_err(|_| candle_core::Error::Msg("fake quantization state poisoned".into()))?.take();
        let mask = mask.ok_or_else(|| candle_core::Error::Msg("fake quantization: backward before forward".into()))?;
        Ok(Some(grad.mul(&Tensor::from_vec(mask, w.shape(), w.device())?)?))
    }
}

/// `w` (whose `axes` are its output and input channels) as the quantized
/// file computes it, with the straight-through gradient.
pub fn fake_quantize(w: &Tensor, axes: Axes, scheme: Scheme) -> Result<Tensor> {
    w.contiguous()?.apply_op1(FakeQuant { scheme, axes, mask: Arc::default() })
}

/// `t` rounded to float16 and back (the gradient passes through the casts).
pub fn round_f16(t: &Tensor) -> Result<Tensor> {
    t.to_dtype(DType::F16)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn forward_is_the_file_and_gradient_passes_inside_the_range() {
        // Heavy-tailed rows (Laplace), where the least-squares clipping value clips the largest weights.
        let mut rng = mriscreen::rng::Rng::new(11);
        let v2: Vec<f32> = (0..2 * 256)
            .map(|_| {
                let (u, s) = (rng.uniform().max(1e-6), if rng.uniform() < 0.5 { -1.0 } else { 1.0 });
                -s * u.ln()
            })
            .collect();
        let w = Var::from_vec(v2.clone(), (2, 256), &Device::Cpu).unwrap();
        let scheme = Scheme::int4(0);
        let q = fake_quantize(w.as_tensor(), Axes::OUT_FIRST, scheme).unwrap();
        assert_eq!(q.flatten_all().unwrap().to_vec1::<f32>().unwrap(), quant::fake_quantize(&v2, &[2, 256], Axes::OUT_FIRST, scheme));
        let grads = q.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(w.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let q = quant::quantize(&v2, &[2, 256], Axes::OUT_FIRST, scheme);
        for (i, (&x, &gi)) in v2.iter().zip(&g).enumerate() {
            let s = q.scales[i / 256].to_f32();
            let want = if x.abs() <= s * 7.5 { 1.0 } else { 0.0 };
            assert_eq!(gi, want, "element {i} = {x}, scale {s}");
        }
        let clipped = g.iter().filter(|&&x| x == 0.0).count();
        assert!(clipped > 0 && clipped < 50, "{clipped} of 512 weights clipped: the tails only");
        // In parallel row chunks the result is the same as in one piece.
        let big: Vec<f32> = (0..64 * 96).map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 300.0).collect();
        let (q, _) = quantize_with_mask(&big, &[64, 96], Axes::OUT_FIRST, Scheme::int4(32));
        assert_eq!(q, quant::fake_quantize(&big, &[64, 96], Axes::OUT_FIRST, Scheme::int4(32)));
        let b = Tensor::new(&[1.0f32 / 3.0], &Device::Cpu).unwrap();
        assert_eq!(round_f16(&b).unwrap().to_vec1::<f32>().unwrap()[0], half::f16::from_f32(1.0 / 3.0).to_f32());
    }
}
