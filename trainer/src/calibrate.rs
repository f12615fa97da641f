//! Calibration and the "refer for expert review" threshold, both chosen on
//! the validation split and written into the model's metadata.
//!
//! - **Temperature scaling** (Guo et al., "On Calibration of Modern Neural
//!   Networks", ICML 2017): one scalar `T` divides every logit; `T`
//!   minimises the negative log-likelihood of the validation labels. It
//!   never changes the predicted class, only how sure the model says it is.
//! - **Refer threshold** (selective classification, Geifman & El-Yaniv 2017):
//!   sort validation images by their top calibrated probability; the
//!   threshold is the lowest probability at which the images at or above it
//!   are still right at least `target_accuracy` of the time. Below it the
//!   page says "refer for expert review". It is a point estimate on a finite
//!   validation set, not a guarantee; the achieved coverage and accuracy are
//!   reported with the number of images.
//! - **ECE** (expected calibration error, 15 equal-width bins) before and
//!   after, to show what the temperature did.
//! - **Familiarity** (see `mriscreen::familiar`): class means of the pooled
//!   `features` of the training split; the cosine-distance limit is the
//!   99th percentile of the validation images' distances. An input beyond it
//!   is "unlike the training images" and referred, however confident the
//!   model is. Needs a model with a `features` output.

use crate::data::{Dataset, Split};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// What calibration found, written next to the model as `calibration.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub temperature: f64,
    /// Validation images used.
    pub n: usize,
    pub nll_before: f64,
    pub nll_after: f64,
    pub ece_before: f64,
    pub ece_after: f64,
    pub refer_threshold: f64,
    /// The accuracy asked of the images not referred.
    pub target_accuracy: f64,
    /// Share of validation images not referred at the threshold.
    pub coverage: f64,
    /// Their accuracy.
    pub accuracy_accepted: f64,
    /// The familiarity limit (feature distance), when the model has a `features` output.
    pub familiarity_limit: Option<f64>,
    /// Training images its statistics were fitted on.
    pub familiarity_train_n: usize,
}

/// Quantile of the validation images' feature distances used as the familiarity limit.
pub const FAMILIARITY_QUANTILE: f64 = 0.99;

/// Probabilities at temperature `t`: the same softmax the page applies.
pub fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
    mriscreen::softmax(logits, t as f32).into_iter().map(f64::from).collect()
}

/// Mean negative log-likelihood of `labels` under softmax(logits / t).
pub fn nll(logits: &[Vec<f32>], labels: &[u32], t: f64) -> f64 {
    let total: f64 = logits.iter().zip(labels).map(|(l, &y)| -softmax(l, t)[y as usize].max(1e-300).ln()).sum();
    total / logits.len().max(1) as f64
}

/// The temperature in [0.05, 20] minimising [`nll`]: golden-section search
/// on log T (the NLL is convex in 1/T, so unimodal there).
pub fn fit_temperature(logits: &[Vec<f32>], labels: &[u32]) -> f64 {
    let f = |u: f64| nll(logits, labels, u.exp());
    let (mut a, mut b) = (0.05f64.ln(), 20f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

/// Expected calibration error with 15 equal-width confidence bins.
pub fn ece(logits: &[Vec<f32>], labels: &[u32], t: f64) -> f64 {
    let n = logits.len().max(1) as f64;
    // Σ over bins of (k/n)·|mean confidence − accuracy|.
    reliability(logits, labels, t).iter().map(|b| b.count as f64 / n * (b.confidence - b.accuracy).abs()).sum()
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    /// Images whose top probability falls in the bin.
    pub count: usize,
    /// Their mean top probability and the share of them that are right (0 when empty).
    pub confidence: f64,
    pub accuracy: f64,
}

/// The reliability diagram: the top probability at temperature `t` in
/// [`ECE_BINS`] equal-width bins.
pub fn reliability(logits: &[Vec<f32>], labels: &[u32], t: f64) -> Vec<Bin> {
    let mut sum = [(0.0f64, 0.0f64, 0usize); ECE_BINS];
    for (l, &y) in logits.iter().zip(labels) {
        let (top, conf) = top(&softmax(l, t));
        let bin = ((conf * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        sum[bin].0 += conf;
        sum[bin].1 += f64::from(u8::from(top == y as usize));
        sum[bin].2 += 1;
    }
    sum.iter().map(|&(c, a, k)| Bin { count: k, confidence: if k > 0 { c / k as f64 } else { 0.0 }, accuracy: if k > 0 { a / k as f64 } else { 0.0 } }).collect()
}

/// Bins of the expected calibration error and the reliability diagram.
pub const ECE_BINS: usize = 15;

fn top(p: &[f64]) -> (usize, f64) {
    p.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or((0, 0.0))
}

/// The lowest confidence `t` such that images with confidence ≥ `t` are
/// right at least `target` of the time (see the module docs), with the
/// coverage and accuracy it gives. 1.0 (refer nearly everything) when no
/// confidence level reaches the target.
pub fn refer_threshold(confident: &[(f64, bool)], target: f64) -> (f64, f64, f64) {
    let mut v = confident.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = None;
    let mut right = 0usize;
    for (k, &(conf, ok)) in v.iter().enumerate() {
        right += usize::from(ok);
        // Accept only at a boundary between distinct confidences.
        let boundary = v.get(k + 1).is_none_or(|next| next.0 < conf);
        if boundary && right as f64 / (k + 1) as f64 >= target {
            best = Some((conf, (k + 1) as f64 / v.len() as f64, right as f64 / (k + 1) as f64));
        }
    }
    best.unwrap_or((1.0, 0.0, 0.0))
}

/// Calibrates `logits` against `labels` (see the module docs).
pub fn calibrate(logits: &[Vec<f32>], labels: &[u32], target_accuracy: f64) -> Calibration {
    let t = fit_temperature(logits, labels);
    let confident: Vec<(f64, bool)> = logits
        .iter()
        .zip(labels)
        .map(|(l, &y)| {
            let (k, conf) = top(&softmax(l, t));
            (conf, k == y as usize)
        })
        .collect();
    let (refer_threshold, coverage, accuracy_accepted) = refer_threshold(&confident, target_accuracy);
    Calibration {
        temperature: t,
        n: logits.len(),
        nll_before: nll(logits, labels, 1.0),
        nll_after: nll(logits, labels, t),
        ece_before: ece(logits, labels, 1.0),
        ece_after: ece(logits, labels, t),
        refer_threshold,
        target_accuracy,
        coverage,
        accuracy_accepted,
        familiarity_limit: None,
        familiarity_train_n: 0,
    }
}

/// Runs `bytes` (ONNX) on the validation split (and, for the familiarity
/// statistics, the training split) exactly as the page does, calibrates, and
/// returns the report and the model with its metadata set. A model that is
/// already calibrated is refused unless `again`: then everything is fitted
/// afresh from its raw logits and features and replaced.
pub fn calibrate_onnx(bytes: &[u8], ds: &Dataset, target_accuracy: f64, again: bool) -> Result<(Calibration, Vec<u8>)> {
    let mut c = mriscreen::Classifier::new(bytes, &Default::default())?;
    if c.info().classes != ds.classes {
        bail!("the model's classes {:?} differ from the dataset's {:?}", c.info().classes, ds.classes);
    }
    if c.info().temperature != 1.0 && !again {
        bail!(
            "the model is already calibrated (temperature {}); calibrate the uncalibrated export, or pass --again to fit everything afresh",
            c.info().temperature
        );
    }
    let idx = ds.split(Split::Val);
    if idx.len() < 20 {
        bail!("only {} validation images: too few to calibrate (need at least 20)", idx.len());
    }
    let (logits, val_features) = run_split(&mut c, ds, Split::Val)?;
    let mut cal = calibrate(&logits, &ds.labels(Split::Val), target_accuracy);
    let mut description = c.info().description();
    description.temperature = cal.temperature as f32;
    description.refer_threshold = Some(cal.refer_threshold as f32);
    if let Some(val_features) = val_features {
        let (_, train_features) = run_split(&mut c, ds, Split::Train)?;
        let train_features = train_features.unwrap_or_default();
        let stats = mriscreen::familiar::Familiarity::fit(&train_features, &ds.labels(Split::Train), ds.classes.len())
            .context("fitting the familiarity statistics: every class needs training images")?;
        let distances: Vec<f32> = val_features.iter().map(|f| stats.distance(f)).collect();
        let stats = stats.with_limit(&distances, FAMILIARITY_QUANTILE);
        cal.familiarity_limit = Some(f64::from(stats.limit));
        cal.familiarity_train_n = train_features.len();
        description.familiarity = Some(stats.to_json());
    }
    // The whole description is written again (one writer): a model calibrated
    // with --classes and the like comes out describing itself.
    let out = mriscreen::model::with_metadata(bytes, &description.entries())?;
    Ok((cal, out))
}

/// One vector per image.
type Rows = Vec<Vec<f32>>;

/// Logits of every image of `split`, and their pooled features when the
/// model has a `features` output.
fn run_split(c: &mut mriscreen::Classifier, ds: &Dataset, split: Split) -> Result<(Rows, Option<Rows>)> {
    let idx = ds.split(split);
    let mut logits = Vec::with_capacity(idx.len());
    let mut features = Vec::with_capacity(idx.len());
    for &i in idx {
        let p = mriscreen::block_on(c.classify_image(&ds.samples[i].image))?;
        logits.push(p.logits);
        features.extend(p.features.as_ref().map(mriscreen::familiar::pool));
    }
    let complete = !features.is_empty() && features.len() == logits.len();
    Ok((logits, complete.then_some(features)))
}

impl Calibration {
    /// The model card's section on calibration and referral (markdown, ending
    /// in a blank line). `calibration.json` carries it too, so a run
    /// calibrated again can have its card brought up to date.
    pub fn card_section(&self) -> String {
        let mut s = format!(
            "## Calibration and referral (validation split, n = {})\n\nTemperature {:.3} (NLL {:.3} → {:.3}, ECE {:.3} → {:.3}). \
             A result whose top calibrated probability is below **{:.3}** is flagged \"refer for expert review\": \
             on the validation split {:.1} % of images were above it and {:.1} % of those were right (target {:.0} %). \
             A point estimate on {} images, not a guarantee.\n\n",
            self.n,
            self.temperature,
            self.nll_before,
            self.nll_after,
            self.ece_before,
            self.ece_after,
            self.refer_threshold,
            100.0 * self.coverage,
            100.0 * self.accuracy_accepted,
            100.0 * self.target_accuracy,
            self.n
        );
        if let Some(l) = self.familiarity_limit {
            s += &format!(
                "Familiarity: an input whose pooled features lie at a cosine distance above **{l:.3}** from every \
                 class centre of the {} training images is flagged \"unlike the training images\" and referred too; the limit \
                 is the {:.0}th percentile of the validation images' distances, so about 1 in 100 images like the training \
                 data is referred by it.\n\n",
                self.familiarity_train_n,
                FAMILIARITY_QUANTILE * 100.0
            );
        }
        s
    }

    /// Writes `calibration.json`: the numbers and the card section.
    pub fn write_report(&self, path: &Path) -> Result<()> {
        let mut v = serde_json::to_value(self)?;
        v["card_section"] = self.card_section().into();
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        format!(
            "calibration on {} validation images: temperature {:.3} (NLL {:.3} → {:.3}, ECE {:.3} → {:.3}); \
             refer below {:.3} top probability: {:.1} % not referred, {:.1} % of those right (target {:.0} %)",
            self.n,
            self.temperature,
            self.nll_before,
            self.nll_after,
            self.ece_before,
            self.ece_after,
            self.refer_threshold,
            100.0 * self.coverage,
            100.0 * self.accuracy_accepted,
            100.0 * self.target_accuracy
        ) + &match self.familiarity_limit {
            Some(l) => format!(
                "; unlike the training images above feature distance {l:.3} ({:.0}th percentile on validation, statistics from {} training images)",
                FAMILIARITY_QUANTILE * 100.0,
                self.familiarity_train_n
            ),
            None => "; no familiarity check (the model has no features output)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overconfident_logits_get_a_temperature_above_one() {
        // 70 % right, but logits say ~99 %: T must grow, and NLL and ECE fall.
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100u32 {
            logits.push(vec![6.0, 0.0, 0.0]);
            labels.push(if i % 10 < 7 { 0 } else { 1 + i % 2 });
        }
        let c = calibrate(&logits, &labels, 0.95);
        assert!(c.temperature > 2.0, "{c:?}");
        assert!(c.nll_after < c.nll_before && c.ece_after < c.ece_before, "{c:?}");
        // After scaling the top probability matches the 70 % accuracy.
        let p = softmax(&logits[0], c.temperature)[0];
        assert!((p - 0.7).abs() < 0.01, "{p}");
    }

    #[test]
    fn well_calibrated_logits_keep_temperature_near_one() {
        // Top probability 0.8 (logit gap ln 8 over 3 classes… two losers at 0):
        // p = e^a / (e^a + 2) = 0.8 → a = ln 8; 80 % of labels agree.
        let a = 8f32.ln();
        let logits: Vec<Vec<f32>> = (0..200).map(|_| vec![a, 0.0, 0.0]).collect();
        let labels: Vec<u32> = (0..200).map(|i| if i % 5 == 4 { 1 } else { 0 }).collect();
        let t = fit_temperature(&logits, &labels);
        assert!((t - 1.0).abs() < 0.01, "{t}");
    }

    #[test]
    fn threshold_is_the_lowest_confidence_that_meets_the_target() {
        // Confidences 0.9..0.1: the top five are right, then alternating.
        let v: Vec<(f64, bool)> = (0..10).map(|i| (0.95 - 0.1 * i as f64, i < 5 || i % 2 == 0)).collect();
        // Prefix accuracies: 1,1,1,1,1, 6/7 at k=7 (0.857), 5/6 at k=6 ...
        let (t, coverage, acc) = refer_threshold(&v, 0.85);
        assert!((t - 0.35).abs() < 1e-9 && (coverage - 0.7).abs() < 1e-9 && (acc - 6.0 / 7.0).abs() < 1e-9, "{t} {coverage} {acc}");
        let (t, coverage, acc) = refer_threshold(&v, 1.0);
        assert!((t - 0.55).abs() < 1e-9 && (coverage - 0.5).abs() < 1e-9 && acc == 1.0);
        // Nothing reaches the target: refer everything.
        assert_eq!(refer_threshold(&[(0.9, false), (0.5, false)], 0.5), (1.0, 0.0, 0.0));
        // Ties are accepted or referred together.
        let (t, coverage, _) = refer_threshold(&[(0.9, true), (0.8, true), (0.8, false)], 0.9);
        assert_eq!((t, coverage), (0.9, 1.0 / 3.0));
    }
}
