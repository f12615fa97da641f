//! `mriscreen predict`: classify image files; one bad file never stops the others.

use crate::files::read_limited;
use crate::model_args::ModelArgs;
use anyhow::{Context, Result};
use mriscreen::{block_on, Classifier, Limits, Prediction};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Print a JSON array, one object per file. Classified: "file", "label",
    /// "probabilities" (class → probability), "backend" ("cpu" or "gpu"),
    /// "refer" (true: refer for expert review), "refer_reasons" (each with
    /// "kind" — "low_confidence" with "top_probability", "threshold" and
    /// "calibrated"; "colour" with "fraction"; "unfamiliar" with "distance"
    /// and "limit" — and a "message"), "colour_fraction", and for a model
    /// with feature statistics "familiarity_distance" and "familiarity_limit";
    /// for a multi-frame DICOM file "frame" and "frames". Failed: "file" and
    /// "error".
    #[arg(long)]
    json: bool,
    /// Image files to classify: JPEG, PNG, BMP, TIFF, WebP, or DICOM (.dcm;
    /// the middle frame of a multi-frame file).
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
    notes.push(mriscreen::referral::describe(info.threshold(), classifier.has_familiarity()));
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
        let out: Vec<Value> = results.iter().map(|(f, r)| to_json(f, r)).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&info.classes, &results);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One file's JSON object; the fields are listed in `Args::json`'s help.
fn to_json(file: &str, r: &Result<Prediction>) -> Value {
    match r {
        Ok(p) => {
            let probs: Map<String, Value> =
                p.probabilities.iter().map(|c| (c.class.clone(), json!(c.probability))).collect();
            let mut v = json!({ "file": file, "label": p.label, "probabilities": probs, "backend": p.backend });
            v["refer"] = json!(p.refer);
            let reasons: Vec<Value> = p
                .refer_reasons
                .iter()
                .map(|r| {
                    let mut o = json!(r);
                    o["message"] = json!(r.to_string());
                    o
                })
                .collect();
            v["refer_reasons"] = json!(reasons);
            v["colour_fraction"] = json!(p.colour_fraction);
            if let (Some(d), Some(l)) = (p.familiarity_distance, p.familiarity_limit) {
                v["familiarity_distance"] = json!(d);
                v["familiarity_limit"] = json!(l);
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

fn print_table(classes: &[String], results: &[(String, Result<Prediction>)]) {
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
                let review = if p.refer { "REFER   " } else { "-       " };
                println!("{line}  {review}{} {:.1} ms", p.backend, p.timings.inference_ms);
                for reason in &p.refer_reasons {
                    println!("{:fw$}  refer: {reason}", "");
                }
            }
            Err(e) => println!("{file:fw$}  error: {e:#}"),
        }
    }
}
