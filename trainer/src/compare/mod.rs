//! `mriscreen compare`: compressed variants against their parent, each run
//! exactly as the page runs it on the same test images (and the validation
//! split, where the default is chosen). Per model: accuracy with its Wilson
//! interval and n, macro-F1, per-class recall, NLL and ECE before and after
//! its temperature, the deduplicated test subset, bytes and gzip −9 bytes,
//! tract CPU latency. Against the parent: the exact McNemar test with its
//! discordant counts, a paired bootstrap interval of the accuracy
//! difference, top-1 agreement and the largest change of any probability.
//! The choice rule for the shipped default lives here too ([`choose`]).

pub mod plots;
pub mod report;
pub mod stats;

use crate::calibrate::{ece, nll, reliability, softmax, Bin};
use crate::data::{Dataset, Split};
use crate::evaluate::{evaluate_onnx_each, Evaluation};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// How far below the parent's validation accuracy a variant may be and still
/// be chosen as the default (1 point).
pub const CHOICE_MARGIN: f64 = 0.01;

/// Against the parent, on one set of images.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub n: usize,
    pub mcnemar: stats::McNemar,
    #[serde(flatten)]
    pub difference: stats::Difference,
}

#[derive(Debug, Clone, Serialize)]
pub struct VsParent {
    pub test: Paired,
    pub deduplicated: Option<Paired>,
    /// Share of test images whose top class both models agree on.
    pub agreement: f64,
    /// Largest |Δp| over test images and classes, probabilities at temperature 1
    /// (the raw effect of the weights, before each model's own calibration).
    pub max_abs_probability_change: f64,
}

/// One model's results.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub precision: String,
    /// `mriscreen.quantization` (method, bits, block …), if any.
    pub quantization: Option<serde_json::Value>,
    pub bytes: usize,
    pub gzip_bytes: usize,
    /// Bytes as a share of the parent's.
    pub bytes_ratio: f64,
    pub test: Evaluation,
    pub val_accuracy: Option<f64>,
    pub val_accuracy_ci95: Option<[f64; 2]>,
    pub val_n: usize,
    pub temperature: f64,
    pub nll: f64,
    pub nll_calibrated: f64,
    pub ece: f64,
    pub ece_calibrated: f64,
    /// The reliability diagram at the model's temperature.
    pub reliability: Vec<Bin>,
    pub latency_ms_median: f64,
    pub latency_runs: usize,
    pub vs_parent: Option<VsParent>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub data: String,
    pub test_n: usize,
    pub deduplicated_n: Option<usize>,
    pub val_n: usize,
    pub bootstrap_resamples: usize,
    pub seed: u64,
    pub choice_rule: String,
    /// The model the rule chooses (by name), if any model has validation results.
    pub chosen: Option<String>,
    pub models: Vec<ModelResult>,
    pub disclaimer: String,
}

/// What [`compare`] is asked.
pub struct Request<'a> {
    pub ds: &'a Dataset,
    pub data_label: String,
    /// The parent first, then the variants: (name, file label, bytes).
    pub models: Vec<(String, String, Vec<u8>)>,
    pub resamples: usize,
    pub seed: u64,
    pub latency_runs: usize,
}

struct Run {
    test: Evaluation,
    logits: Vec<Vec<f32>>,
    predicted: Vec<u32>,
    val: Option<Evaluation>,
}

fn run(bytes: &[u8], ds: &Dataset) -> Result<Run> {
    let (test, predictions) = evaluate_onnx_each(bytes, ds, Split::Test)?;
    let predicted = predictions.iter().map(|p| ds.classes.iter().position(|c| *c == p.label).unwrap_or(usize::MAX) as u32).collect();
    let logits = predictions.into_iter().map(|p| p.logits).collect();
    let val = if ds.split(Split::Val).is_empty() { None } else { Some(evaluate_onnx_each(bytes, ds, Split::Val)?.0) };
    Ok(Run { test, logits, predicted, val })
}

fn gzip_len(bytes: &[u8]) -> Result<usize> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}

/// Median milliseconds of `runs` tract CPU inferences on `input` after three warm-up runs.
fn latency(bytes: &[u8], input: &[f32], runs: usize) -> Result<f64> {
    let package = mriscreen::ModelPackage::read(bytes, &Default::default())?;
    let cpu = mriscreen::backend::CpuBackend::load(&package)?;
    for _ in 0..3 {
        cpu.run(input)?;
    }
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            cpu.run(input).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

fn paired(parent: &[bool], model: &[bool], resamples: usize, seed: u64) -> Paired {
    Paired { n: parent.len(), mcnemar: stats::mcnemar(parent, model), difference: stats::paired_bootstrap(parent, model, resamples, seed) }
}

/// Runs every model and compares each with the first (the parent).
pub fn compare(req: Request) -> Result<Comparison> {
    let ds = req.ds;
    let Some((_, _, parent_bytes)) = req.models.first() else { bail!("no models to compare") };
    let labels = ds.labels(Split::Test);
    if labels.is_empty() {
        bail!("the dataset has no test images");
    }
    let clean: std::collections::HashSet<usize> = ds.without_training_copies(Split::Test).into_iter().collect();
    let test_idx = ds.split(Split::Test);
    let dedup: Vec<usize> = (0..test_idx.len()).filter(|&k| clean.contains(&test_idx[k])).collect();
    let has_dedup = !ds.train.is_empty() && dedup.len() < test_idx.len();
    let probe = mriscreen::preprocess::preprocess(
        &ds.samples[test_idx[0]].image,
        &mriscreen::ModelPackage::read(parent_bytes, &Default::default())?.info.input,
    );
    let mut results: Vec<ModelResult> = Vec::new();
    let mut parent_run: Option<(Vec<bool>, Vec<Vec<f32>>, Vec<u32>)> = None;
    for (name, file, bytes) in &req.models {
        eprintln!("{name}:");
        let package = mriscreen::ModelPackage::read(bytes, &Default::default()).with_context(|| format!("{file} does not load"))?;
        let info = &package.info;
        if info.classes != ds.classes {
            bail!("{file}: its classes {:?} differ from the dataset's {:?}", info.classes, ds.classes);
        }
        let r = run(bytes, ds).with_context(|| format!("running {file}"))?;
        let right: Vec<bool> = r.predicted.iter().zip(&labels).map(|(p, y)| p == y).collect();
        let t = f64::from(info.temperature);
        let vs_parent = parent_run.as_ref().map(|(p_right, p_logits, p_pred)| {
            let sub = |v: &[bool]| dedup.iter().map(|&k| v[k]).collect::<Vec<bool>>();
            let max_dp = r.logits.iter().zip(p_logits).fold(0f64, |m, (a, b)| {
                softmax(a, 1.0).iter().zip(softmax(b, 1.0)).fold(m, |m, (x, y)| m.max((x - y).abs()))
            });
            VsParent {
                test: paired(p_right, &right, req.resamples, req.seed),
                deduplicated: has_dedup.then(|| paired(&sub(p_right), &sub(&right), req.resamples, req.seed)),
                agreement: r.predicted.iter().zip(p_pred).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64,
                max_abs_probability_change: max_dp,
            }
        });
        let parent_bytes = results.first().map_or(bytes.len(), |p| p.bytes);
        results.push(ModelResult {
            name: name.clone(),
            file: file.clone(),
            sha256: info.sha256.clone(),
            precision: info.precision.to_string(),
            quantization: info.quantization.as_deref().and_then(|q| serde_json::from_str(q).ok()),
            bytes: bytes.len(),
            gzip_bytes: gzip_len(bytes)?,
            bytes_ratio: bytes.len() as f64 / parent_bytes.max(1) as f64,
            val_accuracy: r.val.as_ref().map(|v| v.accuracy),
            val_accuracy_ci95: r.val.as_ref().map(|v| v.accuracy_ci95),
            val_n: r.val.as_ref().map_or(0, |v| v.n),
            temperature: t,
            nll: nll(&r.logits, &labels, 1.0),
            nll_calibrated: nll(&r.logits, &labels, t),
            ece: ece(&r.logits, &labels, 1.0),
            ece_calibrated: ece(&r.logits, &labels, t),
            reliability: reliability(&r.logits, &labels, t),
            latency_ms_median: latency(bytes, &probe, req.latency_runs)?,
            latency_runs: req.latency_runs,
            test: r.test,
            vs_parent,
        });
        if parent_run.is_none() {
            parent_run = Some((right, r.logits, r.predicted));
        }
    }
    let chosen = choose(&results);
    Ok(Comparison {
        data: req.data_label,
        test_n: labels.len(),
        deduplicated_n: has_dedup.then_some(dedup.len()),
        val_n: ds.split(Split::Val).len(),
        bootstrap_resamples: req.resamples,
        seed: req.seed,
        choice_rule: format!(
            "the smallest file whose validation accuracy is within {:.0} point of the parent's (chosen on validation, reported on test)",
            CHOICE_MARGIN * 100.0
        ),
        chosen: chosen.map(|k| results[k].name.clone()),
        models: results,
        disclaimer: mriscreen::DISCLAIMER.to_string(),
    })
}

/// The default-model rule: among the models with validation results, the
/// smallest file whose validation accuracy is at least the parent's minus
/// [`CHOICE_MARGIN`]. The test split plays no part.
pub fn choose(models: &[ModelResult]) -> Option<usize> {
    let parent = models.first()?.val_accuracy?;
    models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.val_accuracy.is_some_and(|a| a >= parent - CHOICE_MARGIN - 1e-12))
        .min_by_key(|(_, m)| m.bytes)
        .map(|(k, _)| k)
}

/// Writes `compare.json`, `compare.md` and the SVG plots into `dir`.
pub fn write(c: &Comparison, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| -> Result<()> {
        crate::files::write_atomic(&dir.join(name), text)?;
        written.push(dir.join(name).display().to_string());
        Ok(())
    };
    put("compare.json", serde_json::to_string_pretty(c)? + "\n")?;
    put("compare.md", report::markdown(c))?;
    for (name, svg) in plots::all(c)? {
        put(&name, svg)?;
    }
    Ok(written)
}
