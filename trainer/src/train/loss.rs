//! Cross-entropy with optional label smoothing (Szegedy et al. 2016) and
//! class weights (a weighted mean over the batch), and batch accuracy.

use candle_core::{Result, Tensor, D};

/// Mean cross-entropy of `logits` `[N,C]` against `labels`; with smoothing ε
/// the target puts 1 − ε + ε/C on the label and ε/C elsewhere; with class
/// weights each sample counts `weights[label]` times.
pub fn cross_entropy(logits: &Tensor, labels: &[u32], smoothing: f32, weights: Option<&[f32]>) -> Result<Tensor> {
    let (n, c) = logits.dims2()?;
    let off = smoothing / c as f32;
    let mut target = vec![off; n * c];
    let mut w = vec![1f32; n];
    for (i, &l) in labels.iter().enumerate() {
        target[i * c + l as usize] += 1.0 - smoothing;
        if let Some(cw) = weights {
            w[i] = cw[l as usize];
        }
    }
    soft_cross_entropy(logits, target, &w)
}

/// Cross-entropy of `logits` `[N,C]` against soft targets `[N,C]` (rows
/// summing to 1, row-major), each sample weighted `weights[i]`: the weighted
/// mean over the batch.
pub fn soft_cross_entropy(logits: &Tensor, target: Vec<f32>, weights: &[f32]) -> Result<Tensor> {
    let (n, c) = logits.dims2()?;
    let total: f32 = weights.iter().sum();
    let device = logits.device();
    let target = Tensor::from_vec(target, (n, c), device)?;
    let w = Tensor::from_vec(weights.to_vec(), n, device)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let per_sample = (target * logp)?.sum(D::Minus1)?.neg()?;
    (per_sample * w)?.sum_all()? / f64::from(total)
}

/// Predicted class per row.
pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
    logits.argmax(D::Minus1)?.to_vec1::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_values() {
        // logits [0, ln 3]: p = [1/4, 3/4]; CE(label 1) = -ln(3/4).
        let l = Tensor::new(&[[0f32, 3f32.ln()]], &Device::Cpu).unwrap();
        let ce: f32 = cross_entropy(&l, &[1], 0.0, None).unwrap().to_scalar().unwrap();
        assert!((ce - (-(0.75f32).ln())).abs() < 1e-6);
        // Smoothing 0.2 over 2 classes: target [0.1, 0.9].
        let ce: f32 = cross_entropy(&l, &[1], 0.2, None).unwrap().to_scalar().unwrap();
        let want = -(0.1 * 0.25f32.ln() + 0.9 * 0.75f32.ln());
        assert!((ce - want).abs() < 1e-6);
        // Class weights make the weighted sample dominate the mean.
        let two = Tensor::new(&[[0f32, 3f32.ln()], [0f32, 3f32.ln()]], &Device::Cpu).unwrap();
        let ce: f32 = cross_entropy(&two, &[0, 1], 0.0, Some(&[3.0, 1.0])).unwrap().to_scalar().unwrap();
        let want = (3.0 * -(0.25f32).ln() + -(0.75f32).ln()) / 4.0;
        assert!((ce - want).abs() < 1e-6);
        assert_eq!(argmax(&two).unwrap(), vec![1, 1]);
    }
}
