//! Classification metrics on a held-out split: accuracy with its 95 % Wilson
//! score interval (Wilson 1927) and the number of images, per-class
//! precision / recall / F1, macro-F1, and the confusion matrix (rows: true
//! class, columns: predicted), and the screening question on its own — any
//! tumour class against `notumor` — as sensitivity and specificity with
//! their Wilson intervals. Bootstrap intervals, paired tests and calibration
//! come with the statistics report.

use crate::data::{Dataset, Split};
use crate::files::progress;
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Images of this class in the split.
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub classes: Vec<String>,
    /// Images evaluated.
    pub n: usize,
    pub accuracy: f64,
    /// 95 % Wilson score interval of the accuracy.
    pub accuracy_ci95: [f64; 2],
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Any tumour against no tumour (when the classes include `notumor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<Binary>,
    /// The same predictions on the deduplicated subset (test images without a
    /// near copy in training), and the rule that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated: Option<Box<Evaluation>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset_rule: Option<String>,
}

/// The screening question: tumour (any tumour class) or not.
#[derive(Debug, Clone, Serialize)]
pub struct Binary {
    /// The negative class; every other class is a tumour.
    pub negative: String,
    /// Tumour images and how many were called a tumour (any tumour class).
    pub positives: usize,
    pub true_positives: usize,
    pub negatives: usize,
    pub true_negatives: usize,
    pub sensitivity: f64,
    pub sensitivity_ci95: [f64; 2],
    pub specificity: f64,
    pub specificity_ci95: [f64; 2],
}

/// Tumour vs no tumour from a confusion matrix whose class `negative` is the
/// healthy one. `None` if there is no such class.
pub fn binary(confusion: &[Vec<usize>], classes: &[String], negative: &str) -> Option<Binary> {
    let neg = classes.iter().position(|c| c == negative)?;
    let (mut pos, mut tp, mut negs, mut tn) = (0, 0, 0, 0);
    for (t, row) in confusion.iter().enumerate() {
        for (p, &k) in row.iter().enumerate() {
            if t == neg {
                negs += k;
                tn += if p == neg { k } else { 0 };
            } else {
                pos += k;
                tp += if p != neg { k } else { 0 };
            }
        }
    }
    Some(Binary {
        negative: negative.to_string(),
        positives: pos,
        true_positives: tp,
        negatives: negs,
        true_negatives: tn,
        sensitivity: ratio(tp, pos),
        sensitivity_ci95: wilson(tp, pos),
        specificity: ratio(tn, negs),
        specificity_ci95: wilson(tn, negs),
    })
}

impl Binary {
    pub fn line(&self) -> String {
        let pct = |v: f64| format!("{:.1} %", 100.0 * v);
        format!(
            "tumour vs {}: sensitivity {} ({}–{}, {} of {} tumour images), specificity {} ({}–{}, {} of {})",
            self.negative,
            pct(self.sensitivity),
            pct(self.sensitivity_ci95[0]),
            pct(self.sensitivity_ci95[1]),
            self.true_positives,
            self.positives,
            pct(self.specificity),
            pct(self.specificity_ci95[0]),
            pct(self.specificity_ci95[1]),
            self.true_negatives,
            self.negatives
        )
    }
}

/// Wilson score interval for `k` successes in `n` trials at z = 1.96.
pub fn wilson(k: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (z, n, p) = (1.959_964, n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Metrics of `predicted` against `truth` (class indices into `classes`).
pub fn evaluate(truth: &[u32], predicted: &[u32], classes: &[String]) -> Evaluation {
    let c = classes.len();
    let mut confusion = vec![vec![0usize; c]; c];
    for (&t, &p) in truth.iter().zip(predicted) {
        if (t as usize) < c && (p as usize) < c {
            confusion[t as usize][p as usize] += 1;
        }
    }
    let n = truth.len();
    let correct: usize = (0..c).map(|i| confusion[i][i]).sum();
    let per_class: Vec<ClassMetrics> = (0..c)
        .map(|i| {
            let tp = confusion[i][i];
            let predicted_i: usize = (0..c).map(|t| confusion[t][i]).sum();
            let support: usize = confusion[i].iter().sum();
            let (precision, recall) = (ratio(tp, predicted_i), ratio(tp, support));
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            ClassMetrics { class: classes[i].clone(), precision, recall, f1, support }
        })
        .collect();
    let macro_f1 = per_class.iter().map(|m| m.f1).sum::<f64>() / c.max(1) as f64;
    Evaluation {
        classes: classes.to_vec(),
        n,
        accuracy: ratio(correct, n),
        accuracy_ci95: wilson(correct, n),
        macro_f1,
        per_class,
        binary: binary(&confusion, classes, "notumor"),
        confusion,
        deduplicated: None,
        subset_rule: None,
    }
}

impl Evaluation {
    /// Accuracy with its Wilson interval and n, and macro-F1, in one line.
    pub fn headline(&self) -> String {
        format!(
            "accuracy {:.1} % (95 % Wilson CI {:.1}–{:.1} %, n = {}), macro-F1 {:.3}",
            100.0 * self.accuracy,
            100.0 * self.accuracy_ci95[0],
            100.0 * self.accuracy_ci95[1],
            self.n,
            self.macro_f1
        )
    }

    /// A one-screen table.
    pub fn table(&self) -> String {
        let w = self.classes.iter().map(String::len).max().unwrap_or(5).max(10);
        let mut s = format!("{}\n\n{:w$}  precision  recall     F1  support\n", self.headline(), "class");
        for m in &self.per_class {
            s += &format!("{:w$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}\n", m.class, m.precision, m.recall, m.f1, m.support);
        }
        s += &format!("\nconfusion (rows: true, columns: predicted)\n{:w$}", "");
        for c in &self.classes {
            s += &format!("  {:>10}", c);
        }
        s += "\n";
        for (i, row) in self.confusion.iter().enumerate() {
            s += &format!("{:w$}", self.classes[i]);
            for v in row {
                s += &format!("  {v:>10}");
            }
            s += "\n";
        }
        if let Some(b) = &self.binary {
            s += &format!("\n{}\n", b.line());
        }
        if let (Some(d), Some(rule)) = (&self.deduplicated, &self.subset_rule) {
            s += &format!("\ndeduplicated subset ({rule}): {}\n", d.headline());
        }
        s
    }
}

/// Evaluates an ONNX model exactly as the page and `predict` run it.
pub fn evaluate_onnx(bytes: &[u8], ds: &Dataset, split: Split) -> Result<Evaluation> {
    Ok(evaluate_onnx_each(bytes, ds, split)?.0)
}

/// [`evaluate_onnx`], and every image's prediction in split order.
pub fn evaluate_onnx_each(bytes: &[u8], ds: &Dataset, split: Split) -> Result<(Evaluation, Vec<mriscreen::Prediction>)> {
    let mut c = mriscreen::Classifier::new(bytes, &Default::default())?;
    let idx = ds.split(split);
    let pb = progress(idx.len(), format!("eval {}", split.name()));
    let mut predicted = Vec::with_capacity(idx.len());
    let mut all = Vec::with_capacity(idx.len());
    for &i in idx {
        let mut p = mriscreen::block_on(c.classify_image(&ds.samples[i].image))?;
        let k = ds.classes.iter().position(|c| *c == p.label).unwrap_or(usize::MAX) as u32;
        predicted.push(k);
        p.features = None;
        all.push(p);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let mut e = evaluate(&ds.labels(split), &predicted, &ds.classes);
    // The same predictions on the images without a near copy in training.
    if split == Split::Test && !ds.train.is_empty() {
        let clean: std::collections::HashSet<usize> = ds.without_training_copies(split).into_iter().collect();
        let keep: Vec<usize> = (0..idx.len()).filter(|&k| clean.contains(&idx[k])).collect();
        let truth: Vec<u32> = keep.iter().map(|&k| ds.samples[idx[k]].label).collect();
        let pred: Vec<u32> = keep.iter().map(|&k| predicted[k]).collect();
        e.deduplicated = Some(Box::new(evaluate(&truth, &pred, &ds.classes)));
        e.subset_rule = Some(format!(
            "test images with no training image in their near-duplicate cluster: exact copies or pHash ≤ {} bits, transitively",
            ds.report.leakage.near_threshold
        ));
    }
    Ok((e, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let classes: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        // truth a a a b, predicted a b a b: a: tp 2, fn 1; b: tp 1, fp 1.
        let e = evaluate(&[0, 0, 0, 1], &[0, 1, 0, 1], &classes);
        assert_eq!(e.confusion, vec![vec![2, 1], vec![0, 1]]);
        assert!((e.accuracy - 0.75).abs() < 1e-12);
        assert!((e.per_class[0].precision - 1.0).abs() < 1e-12);
        assert!((e.per_class[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.per_class[1].precision - 0.5).abs() < 1e-12);
        assert!((e.per_class[1].f1 - 2.0 / 3.0).abs() < 1e-12);
        assert!(e.table().contains("n = 4"));
        assert!(e.binary.is_none(), "no notumor class");
    }

    #[test]
    fn tumour_vs_no_tumour() {
        let classes: Vec<String> = ["glioma", "meningioma", "notumor"].iter().map(|s| s.to_string()).collect();
        // A glioma called meningioma is still a tumour found; a meningioma called notumor is missed.
        let truth = [0, 0, 1, 1, 2, 2, 2, 2];
        let pred = [0, 1, 1, 2, 2, 2, 2, 0];
        let b = evaluate(&truth, &pred, &classes).binary.unwrap();
        assert_eq!((b.positives, b.true_positives, b.negatives, b.true_negatives), (4, 3, 4, 3));
        assert!((b.sensitivity - 0.75).abs() < 1e-12 && (b.specificity - 0.75).abs() < 1e-12);
        assert_eq!(b.sensitivity_ci95, wilson(3, 4));
        assert!(b.line().contains("3 of 4 tumour images"), "{}", b.line());
    }

    #[test]
    fn wilson_interval_matches_reference() {
        // 81 of 100: Wilson 95 % interval (0.7222, 0.8749), e.g. statsmodels proportion_confint(81, 100, method="wilson").
        let [lo, hi] = wilson(81, 100);
        assert!((lo - 0.7222).abs() < 1e-4 && (hi - 0.8749).abs() < 1e-4, "{lo} {hi}");
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
    }
}
