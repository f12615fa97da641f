//! Paired tests between two models scored on the same images: the exact
//! McNemar test (McNemar 1947; the two-sided binomial test on the discordant
//! pairs, as `scipy.stats.binomtest(c, b + c, 0.5)` computes it) and a
//! paired bootstrap interval of the accuracy difference (Efron & Tibshirani
//! 1993, percentile method; images resampled with replacement, both models'
//! answers kept together).

use serde::Serialize;

/// The exact McNemar test on one pair of models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Images only the reference (parent) model gets right.
    pub only_reference_right: usize,
    /// Images only the other model gets right.
    pub only_model_right: usize,
    /// Two-sided exact p: 2 · P(X ≤ min(b, c)) for X ~ Binomial(b + c, ½), at most 1.
    pub p: f64,
}

/// ln C(n, k) by summing logs (exact enough for n in the thousands).
fn ln_choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k).map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln()).sum()
}

/// McNemar's exact test from each image's right/wrong under both models.
pub fn mcnemar(reference_right: &[bool], model_right: &[bool]) -> McNemar {
    let b = reference_right.iter().zip(model_right).filter(|(r, m)| **r && !**m).count();
    let c = reference_right.iter().zip(model_right).filter(|(r, m)| !**r && **m).count();
    let n = b + c;
    let p = if n == 0 {
        1.0
    } else {
        let ln2 = std::f64::consts::LN_2;
        let tail: f64 = (0..=b.min(c)).map(|k| (ln_choose(n, k) - n as f64 * ln2).exp()).sum();
        // Where the two tails meet the sum is 1 up to rounding.
        let p = 2.0 * tail;
        if p > 1.0 - 1e-9 { 1.0 } else { p }
    };
    McNemar { only_reference_right: b, only_model_right: c, p }
}

/// Accuracy difference (model − reference) and its paired bootstrap 95 %
/// interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    pub accuracy_difference: f64,
    pub ci95: [f64; 2],
    pub resamples: usize,
    pub seed: u64,
}

/// The paired bootstrap of the accuracy difference with `resamples` draws
/// from the project's seeded RNG.
pub fn paired_bootstrap(reference_right: &[bool], model_right: &[bool], resamples: usize, seed: u64) -> Difference {
    let n = reference_right.len().min(model_right.len());
    let diff: Vec<i8> = reference_right.iter().zip(model_right).map(|(&r, &m)| i8::from(m) - i8::from(r)).collect();
    let point = if n == 0 { 0.0 } else { diff.iter().map(|&d| f64::from(d)).sum::<f64>() / n as f64 };
    if n == 0 || resamples == 0 {
        return Difference { accuracy_difference: point, ci95: [point, point], resamples, seed };
    }
    let mut rng = mriscreen::rng::Rng::new(seed);
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let s: i64 = (0..n).map(|_| i64::from(diff[rng.below(n)])).sum();
            s as f64 / n as f64
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Difference { accuracy_difference: point, ci95: [at(0.025), at(0.975)], resamples, seed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(both: usize, only_ref: usize, only_model: usize, neither: usize) -> (Vec<bool>, Vec<bool>) {
        let mut r = Vec::new();
        let mut m = Vec::new();
        for (k, a, b) in [(both, true, true), (only_ref, true, false), (only_model, false, true), (neither, false, false)] {
            r.extend(std::iter::repeat_n(a, k));
            m.extend(std::iter::repeat_n(b, k));
        }
        (r, m)
    }

    #[test]
    fn mcnemar_matches_scipy() {
        // scipy.stats.binomtest(2, 12, 0.5).pvalue = 0.03857421875 (= 2 · 79 / 4096).
        let (r, m) = pairs(50, 10, 2, 5);
        let t = mcnemar(&r, &m);
        assert_eq!((t.only_reference_right, t.only_model_right), (10, 2));
        assert!((t.p - 0.038_574_218_75).abs() < 1e-12, "{}", t.p);
        // binomtest(3, 7, 0.5).pvalue = 1.0 (the two tails meet).
        assert_eq!(mcnemar(&pairs(0, 4, 3, 0).0, &pairs(0, 4, 3, 0).1).p, 1.0);
        // No discordant pairs: nothing to test.
        assert_eq!(mcnemar(&[true, false], &[true, false]).p, 1.0);
        // Large n stays finite: binomtest(400, 1000, 0.5).pvalue ≈ 2.7e-10.
        let (r, m) = pairs(0, 600, 400, 0);
        let p = mcnemar(&r, &m).p;
        assert!(p > 1e-10 && p < 1e-9, "{p}");
    }

    #[test]
    fn bootstrap_brackets_the_difference_and_is_seeded() {
        let (r, m) = pairs(800, 20, 60, 120);
        let d = paired_bootstrap(&r, &m, 2000, 7);
        assert!((d.accuracy_difference - 0.04).abs() < 1e-12);
        assert!(d.ci95[0] < 0.04 && 0.04 < d.ci95[1] && d.ci95[0] > 0.0, "{:?}", d.ci95);
        assert_eq!(d, paired_bootstrap(&r, &m, 2000, 7), "same seed, same interval");
        let same = paired_bootstrap(&r, &r, 500, 1);
        assert_eq!((same.accuracy_difference, same.ci95), (0.0, [0.0, 0.0]));
    }
}
