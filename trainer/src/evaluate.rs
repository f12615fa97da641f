//! Classification metrics on a held-out split: accuracy with its 95 % Wilson
//! score interval (Wilson 1927) and the number of images, per-class
//! precision / recall / F1, macro-F1, and the confusion matrix (rows: true
//! class, columns: predicted). Bootstrap intervals, paired tests and
//! calibration come with the statistics report.

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
        confusion,
    }
}

impl Evaluation {
    /// A one-screen table.
    pub fn table(&self) -> String {
        let w = self.classes.iter().map(String::len).max().unwrap_or(5).max(10);
        let mut s = format!(
            "accuracy {:.1} % (95 % CI {:.1}–{:.1} %, n = {}), macro-F1 {:.3}\n\n{:w$}  precision  recall     F1  support\n",
            100.0 * self.accuracy,
            100.0 * self.accuracy_ci95[0],
            100.0 * self.accuracy_ci95[1],
            self.n,
            self.macro_f1,
            "class"
        );
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
        s
    }
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
    }

    #[test]
    fn wilson_interval_matches_reference() {
        // 81 of 100: Wilson 95 % interval (0.7222, 0.8749), e.g. statsmodels proportion_confint(81, 100, method="wilson").
        let [lo, hi] = wilson(81, 100);
        assert!((lo - 0.7222).abs() < 1e-4 && (hi - 0.8749).abs() < 1e-4, "{lo} {hi}");
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
    }
}
