//! `mriscreen predict`: classify image files; one bad file never stops the others.
//! On the CPU backend the files are spread over one classifier per core
//! (results still in input order); the last line says how many images per
//! second that made. A closed pipe (`predict … | head`) ends it quietly.

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
    /// Classifiers run side by side on the CPU backend (default: one per core; the WebGPU backend runs one).
    #[arg(long)]
    threads: Option<usize>,
}

/// Prints a line to stdout; false once the reader has gone (a closed pipe), so the caller can stop.
fn out(line: &str) -> bool {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}") {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        // Any other write failure (a full disk) is as final for this output.
        Err(_) => false,
    }
}

/// Exit status: 0 when every file was classified, 1 when any failed.
pub fn run(args: Args) -> Result<ExitCode> {
    let chosen = args.model.load()?;
    let classifier = block_on(Classifier::load(&chosen.bytes, &chosen.options, args.model.backend.into()))
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
        (Some(adapter), _) => format!("backend: {} on {adapter}{}", status.kind, status.speed.as_ref().map_or_else(String::new, |s| format!(" ({s})"))),
        (None, Some(reason)) => format!("backend: {} (WebGPU not used: {reason})", status.kind),
        (None, None) => format!("backend: {}", status.kind),
    });
    for n in &notes {
        if args.json {
            eprintln!("{n}");
        } else if !out(n) {
            return Ok(ExitCode::SUCCESS);
        }
    }

    let on_cpu = status.kind == mriscreen::backend::BackendKind::Cpu;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if on_cpu { args.threads.unwrap_or(cores).clamp(1, args.files.len().max(1)) } else { 1 };
    let mut classifiers = vec![classifier];
    for _ in 1..threads {
        classifiers.push(block_on(Classifier::load(&chosen.bytes, &chosen.options, mriscreen::BackendChoice::Cpu))?);
    }
    let started = std::time::Instant::now();
    let mut output = Output::new(args.json, &info.classes, &args.files);
    let (count, failed) = if output.start() { classify_all(&args.files, classifiers, |file, r| output.item(file, r)) } else { (0, 0) };
    if !output.finish() {
        return Ok(ExitCode::SUCCESS);
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{count} file(s) in {seconds:.2} s: {:.1} images/s on {threads} classifier(s){}",
        count as f64 / seconds.max(1e-9),
        if failed > 0 { format!("; {failed} failed") } else { String::new() }
    );
    if args.json {
        eprintln!("{summary}");
    } else {
        out(&summary);
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Classifies every file, the classifiers taking the next file in turn, and
/// hands each result to `emit` in input order as soon as it and every file
/// before it are done: only the few finished out of order are held, never
/// the whole batch (holding every result took 3 GB for 10,000 files).
/// `emit` returns false to stop (a closed pipe). Returns (files emitted,
/// how many of them failed).
fn classify_all(files: &[PathBuf], classifiers: Vec<Classifier>, mut emit: impl FnMut(&str, Result<Prediction>) -> bool) -> (usize, usize) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let limits = Limits::default();
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Prediction>)>();
    std::thread::scope(|scope| {
        for mut classifier in classifiers {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                while !stop.load(Relaxed) {
                    let k = next.fetch_add(1, Relaxed);
                    let Some(f) = files.get(k) else { break };
                    let r = read_limited(f, limits.max_bytes).and_then(|bytes| Ok(block_on(classifier.classify(&bytes))?));
                    if tx.send((k, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = std::collections::BTreeMap::new();
        let (mut emitted, mut failed) = (0, 0);
        let mut give = |r: Result<Prediction>, emitted: &mut usize, failed: &mut usize| {
            *failed += usize::from(r.is_err());
            let go_on = emit(&files[*emitted].display().to_string(), r);
            *emitted += 1;
            go_on
        };
        for (k, r) in rx.iter() {
            waiting.insert(k, r);
            while let Some(r) = waiting.remove(&emitted) {
                if !give(r, &mut emitted, &mut failed) {
                    stop.store(true, Relaxed);
                    return (emitted, failed);
                }
            }
        }
        // A worker that stopped early (a panic) left gaps: report them, and what came after.
        while emitted < files.len() && !stop.load(Relaxed) {
            let r = waiting.remove(&emitted).unwrap_or_else(|| Err(anyhow::anyhow!("not classified (a worker stopped)")));
            if !give(r, &mut emitted, &mut failed) {
                break;
            }
        }
        (emitted, failed)
    })
}

/// Where the results go as they come: a JSON array (one pretty object per
/// file) or the table; every method returns false once stdout has closed.
struct Output<'a> {
    json: bool,
    classes: &'a [String],
    /// Width of the file column (the longest name given).
    fw: usize,
    /// The JSON object not printed yet.
    held: Option<String>,
}

impl<'a> Output<'a> {
    fn new(json: bool, classes: &'a [String], files: &[PathBuf]) -> Self {
        let fw = files.iter().map(|f| f.display().to_string().len()).max().unwrap_or(4).max(4);
        Output { json, classes, fw, held: None }
    }

    fn start(&mut self) -> bool {
        if self.json {
            return out("[");
        }
        let (fw, lw) = (self.fw, self.label_width());
        let mut header = format!("\n{:fw$}  {:lw$}", "file", "label");
        for c in self.classes {
            header += &format!("  {:>w$}", c, w = c.len().max(6));
        }
        out(&format!("{header}  review  backend"))
    }

    fn label_width(&self) -> usize {
        self.classes.iter().map(String::len).max().unwrap_or(5).max(5)
    }

    fn item(&mut self, file: &str, r: Result<Prediction>) -> bool {
        if self.json {
            // Each object is printed when the next one comes (with its comma) or at the end: one held at a time.
            let text = format!("  {}", serde_json::to_string_pretty(&to_json(file, &r)).unwrap_or_default().replace('\n', "\n  "));
            return self.held.replace(text).is_none_or(|previous| out(&format!("{previous},")));
        }
        let (fw, lw) = (self.fw, self.label_width());
        let mut lines = Vec::new();
        match &r {
            Ok(p) => {
                let mut line = format!("{file:fw$}  {:lw$}", p.label);
                for (c, cp) in self.classes.iter().zip(&p.probabilities) {
                    line += &format!("  {:>w$.3}", cp.probability, w = c.len().max(6));
                }
                let review = if p.refer { "REFER   " } else { "-       " };
                lines.push(format!("{line}  {review}{} {:.1} ms", p.backend, p.timings.inference_ms));
                lines.extend(p.refer_reasons.iter().map(|reason| format!("{:fw$}  refer: {reason}", "")));
            }
            Err(e) => lines.push(format!("{file:fw$}  error: {e:#}")),
        }
        lines.iter().all(|l| out(l))
    }

    fn finish(&mut self) -> bool {
        if !self.json {
            return true;
        }
        self.held.take().is_none_or(|last| out(&last)) && out("]")
    }
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
