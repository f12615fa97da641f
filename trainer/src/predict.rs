//! `mriscreen predict`: classify image files; one bad file never stops the others.

use crate::model_args::{read_limited, ModelArgs};
use anyhow::{Context, Result};
use mriscreen::{block_on, Classifier, Limits, Prediction};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Print a JSON array, one object per file: {"file","label","probabilities","backend"} or {"file","error"}.
    #[arg(long)]
    json: bool,
    /// Image files to classify.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Exit status: 0 when every file was classified, 1 when any failed.
pub fn run(args: Args) -> Result<ExitCode> {
    let chosen = args.model.load()?;
    let mut classifier = block_on(Classifier::load(&chosen.bytes, &chosen.options, args.model.backend.into()))
        .with_context(|| format!("cannot use model {}", chosen.path.display()))?;
    let info = classifier.info().clone();
    // Notes go to stderr under --json so that stdout stays one JSON document.
    let mut notes = vec![
        format!(
            "model: {} ({}, {}, {}x{} input, trained on: {})",
            chosen.path.display(),
            info.arch.as_deref().unwrap_or("unknown architecture"),
            info.precision,
            info.input.width,
            info.input.height,
            info.trained_on.as_deref().unwrap_or("not stated"),
        ),
        mriscreen::DISCLAIMER.to_string(),
    ];
    // The model's "refer for expert review" threshold (see `calibrate`), if it has one.
    let refer: Option<f32> = info.metadata.get(mriscreen::model::keys::REFER_THRESHOLD).and_then(|v| v.parse().ok());
    let mut when = Vec::new();
    if let Some(t) = refer {
        when.push(format!("the top probability is below {t:.3} (the model's calibrated threshold)"));
    }
    if info.metadata.contains_key(mriscreen::model::keys::FAMILIARITY) {
        when.push("the image is unlike the training images (the model's feature statistics)".into());
    }
    when.push("the image is in colour".into());
    notes.push(format!(
        "refer for expert review: when {}{}",
        when.join(", or "),
        if refer.is_none() { " (the model has no calibrated threshold, so its confidence is not checked)" } else { "" }
    ));
    if info.is_untrained() {
        notes.push("WARNING: untrained placeholder model (random weights): its outputs mean nothing.".into());
    }
    notes.extend(info.assumed.iter().map(|a| format!("assumed: {a}")));
    let status = classifier.status();
    notes.push(match (&status.adapter, &status.fallback_reason) {
        (Some(adapter), _) => format!("backend: {} on {adapter}", status.kind),
        (None, Some(reason)) => format!("backend: {} (WebGPU not used: {reason})", status.kind),
        (None, None) => format!("backend: {}", status.kind),
    });
    for n in &notes {
        if args.json { eprintln!("{n}") } else { println!("{n}") }
    }

    let limits = Limits::default();
    let results: Vec<(String, Result<Prediction>)> = args
        .files
        .iter()
        .map(|f| {
            let r = read_limited(f, limits.max_bytes).and_then(|bytes| Ok(block_on(classifier.classify(&bytes))?));
            (f.display().to_string(), r)
        })
        .collect();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        let out: Vec<Value> = results.iter().map(|(f, r)| to_json(f, r, refer)).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&info.classes, &results, refer);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Why `p` is flagged for expert review (empty: not flagged): a colour input,
/// features unlike the training images' (when the model carries their
/// statistics), or a top probability below the model's `threshold`.
fn refer_reasons(p: &Prediction, threshold: Option<f32>) -> Vec<String> {
    let top = p.probabilities.iter().map(|c| c.probability).fold(0.0, f32::max);
    let mut reasons = Vec::new();
    if p.colour_input {
        reasons.push(format!(
            "colour image ({:.0} % of pixels): MRI slices are grey, this may not be a scan",
            p.colour_fraction * 100.0
        ));
    }
    if let (true, Some(d), Some(l)) = (p.unfamiliar, p.familiarity_distance, p.familiarity_limit) {
        reasons.push(format!("unlike the training images: feature distance {d:.2} is above the model's limit {l:.2}"));
    }
    if let Some(t) = threshold.filter(|&t| top < t) {
        reasons.push(format!("unsure: top probability {top:.3} is below {t:.3}"));
    }
    reasons
}

fn to_json(file: &str, r: &Result<Prediction>, refer: Option<f32>) -> Value {
    match r {
        Ok(p) => {
            let probs: Map<String, Value> =
                p.probabilities.iter().map(|c| (c.class.clone(), json!(c.probability))).collect();
            let mut v = json!({ "file": file, "label": p.label, "probabilities": probs, "backend": p.backend });
            let reasons = refer_reasons(p, refer);
            v["refer"] = json!(!reasons.is_empty());
            if !reasons.is_empty() {
                v["refer_reasons"] = json!(reasons);
            }
            v["colour_fraction"] = json!(p.colour_fraction);
            if let Some(d) = p.familiarity_distance {
                v["familiarity_distance"] = json!(d);
            }
            if p.frames > 1 {
                v["frame"] = json!(p.frame);
                v["frames"] = json!(p.frames);
            }
            v
        }
        Err(e) => json!({ "file": file, "error": format!("{e:#}") }),
    }
}

fn print_table(classes: &[String], results: &[(String, Result<Prediction>)], refer: Option<f32>) {
    let fw = results.iter().map(|(f, _)| f.len()).max().unwrap_or(4).max(4);
    let lw = classes.iter().map(String::len).max().unwrap_or(5).max(5);
    let mut header = format!("\n{:fw$}  {:lw$}", "file", "label");
    for c in classes {
        header += &format!("  {:>w$}", c, w = c.len().max(6));
    }
    println!("{header}  review  backend");
    for (file, r) in results {
        match r {
            Ok(p) => {
                let mut line = format!("{file:fw$}  {:lw$}", p.label);
                for (c, cp) in classes.iter().zip(&p.probabilities) {
                    line += &format!("  {:>w$.3}", cp.probability, w = c.len().max(6));
                }
                let reasons = refer_reasons(p, refer);
                let review = if reasons.is_empty() { "-       " } else { "REFER   " };
                println!("{line}  {review}{} {:.1} ms", p.backend, p.timings.inference_ms);
                for reason in &reasons {
                    println!("{:fw$}  refer: {reason}", "");
                }
            }
            Err(e) => println!("{file:fw$}  error: {e:#}"),
        }
    }
}
