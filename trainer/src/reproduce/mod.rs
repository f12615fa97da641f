//! `mriscreen reproduce`: every strategy of the paper, end to end on one
//! dataset, as a fixed graph of steps that each run one `mriscreen`
//! subcommand (so the report can quote the exact command of every number):
//!
//! - MobileNetV2-1.0, three-stage transfer learning, three seeds on one split
//!   → fp16 PTQ of each (the seed spread) → int8 / int4 PTQ with bias
//!   correction and int8 / int4 QAT of seed 0;
//! - a DenseNet-101 teacher and an EfficientNet-Lite0 teacher → a DenseNet-32
//!   student distilled from each, and the same student without distillation
//!   (`--alpha 0`, the ablation) → the DenseNet-101 student in int8 (PTQ and
//!   QAT);
//! - `compare` of everything against MobileNetV2 fp32, the students against
//!   the undistilled one and against their own fp32, each seed's fp16 against
//!   its fp32; `evaluate --external` of every model on a second dataset;
//! - `report.md`, `report.json` and SVG charts (`report.rs`).
//!
//! A finished step leaves `steps/<name>.json` (its commands and seconds) and
//! is skipped when the same command runs again; an interrupted training step
//! continues from its last checkpoint (`train --resume`), so a killed run
//! loses at most the epoch in progress.

mod report;

use crate::data::{load_dataset, Dataset, DatasetOptions, Split};
use crate::files::write_atomic;
use crate::models::Arch;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
#[command(after_help = SCALES)]
pub struct Args {
    /// Dataset folder in any layout `train` reads (Kaggle Training/ + Testing/, or one folder per class).
    #[arg(long, required_unless_present = "quick", conflicts_with = "quick")]
    pub data: Option<PathBuf>,
    /// Output folder: runs/, models/, compare/, steps/, report.md, report.json and the charts.
    #[arg(long)]
    pub out: PathBuf,
    /// The same graph of steps at toy scale on a tiny SynthTumor set generated into --out (for tests; minutes).
    #[arg(long)]
    pub quick: bool,
    /// A second dataset (any layout; classes may be missing) on which every model is also evaluated.
    #[arg(long)]
    pub external: Option<PathBuf>,
    /// Square input size of every model trained here (a multiple of 32; default 96, --quick 32).
    #[arg(long)]
    pub size: Option<usize>,
    /// Seed of the validation split shared by every step.
    #[arg(long, default_value_t = 2026)]
    pub split_seed: u64,
    /// Split image by image rather than by near-duplicate cluster (as `train --ungrouped`).
    #[arg(long)]
    pub ungrouped: bool,
    /// Refuse a dataset folder that differs from the known manifest it resembles (as `train --strict`).
    #[arg(long)]
    pub strict: bool,
    /// At most this many training images per class (a smaller, faster run; stated in the report).
    #[arg(long)]
    pub max_per_class: Option<usize>,
    /// What the data is, for every model's `mriscreen.trained_on` (default: the dataset's README title, else its name).
    #[arg(long)]
    pub trained_on: Option<String>,
    /// Stop after this step (its name as listed by --plan); the same command without it continues.
    #[arg(long)]
    pub until: Option<String>,
    /// Print the steps and their commands, run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Start over: delete an earlier reproduction in --out (only a folder holding reproduce.json).
    #[arg(long)]
    pub force: bool,
}

const SCALES: &str = "Scale (chosen so that the whole graph fits in 4 hours on a 2-core machine with a dataset of
~5,000 training images: there MobileNetV2 trains every layer at ~41 images/s at 96 px, DenseNet-101 at about
a fifth of that, and every distillation epoch also runs the teacher; every figure below is in the report
beside the numbers):
  MobileNetV2-1.0 (ImageNet start)  epochs 2,2,4 (head, top 4 blocks, all) at 0.001/0.0003/0.0002, three seeds
  QAT (int8, int4; student int8)    2 epochs of every layer from the fp32 file, learning rate 1e-4
  DenseNet-101 teacher              from scratch, 0,0,4 epochs at 0.001
  EfficientNet-Lite0 teacher        ImageNet start, epochs 2,2,4 like MobileNetV2
  DenseNet-32 students              from scratch, 0,0,8 epochs at 0.001, α 0.7, τ 4 (and α 0, the ablation)
  all                               --size 96, batch 32, label smoothing 0.1, augmentation on, patience 3
--quick: 40 training and 8 test images per class of SynthTumor at 32 px, one epoch per stage, no ImageNet
weights; it checks the graph of steps, not the models.
Run the same command again after an interruption: finished steps are skipped and training resumes from
its last checkpoint. A finished step whose command would now differ (other settings, another scale) is
refused rather than mixed in; --force starts over.";

/// Everything that decides the plan; a rerun resumes only when it matches.
#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Settings {
    data: PathBuf,
    quick: bool,
    external: Option<PathBuf>,
    size: usize,
    split_seed: u64,
    ungrouped: bool,
    strict: bool,
    max_per_class: Option<usize>,
    trained_on: Option<String>,
}

/// Training scale.
struct Scale {
    batch: usize,
    mnv2_epochs: &'static str,
    mnv2_lr: &'static str,
    qat_epochs: usize,
    teacher_epochs: usize,
    student_epochs: usize,
    patience: usize,
    pretrained: bool,
    seeds: u64,
    latency_runs: usize,
    resamples: usize,
}

const FULL: Scale = Scale {
    batch: 32,
    mnv2_epochs: "2,2,4",
    mnv2_lr: "0.001,0.0003,0.0002",
    qat_epochs: 2,
    teacher_epochs: 4,
    student_epochs: 8,
    patience: 3,
    pretrained: true,
    seeds: 3,
    latency_runs: 30,
    resamples: 10_000,
};

const QUICK: Scale = Scale {
    // Few steps: fake quantization (the weights' range search every step) dominates QAT at toy scale.
    batch: 32,
    mnv2_epochs: "1,1,1",
    mnv2_lr: "0.001,0.0003,0.0002",
    qat_epochs: 1,
    teacher_epochs: 1,
    student_epochs: 1,
    patience: 3,
    pretrained: false,
    seeds: 3,
    latency_runs: 3,
    resamples: 1000,
};

/// One thing a step does.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Action {
    /// A `mriscreen` subcommand (arguments after the program name).
    Run(Vec<String>),
    /// Copy a file (a run's model into models/).
    Copy(PathBuf, PathBuf),
    /// Create a folder.
    Mkdir(PathBuf),
}

/// A step of the graph.
#[derive(Debug, Clone)]
struct Step {
    name: String,
    what: String,
    actions: Vec<Action>,
    /// A training run's folder: an interrupted step resumes from its checkpoint.
    run_dir: Option<PathBuf>,
    /// Estimated cost (image passes × relative cost per image) for the time estimate.
    cost: f64,
}

/// Written when a step finishes.
#[derive(Serialize, Deserialize)]
pub struct Done {
    pub name: String,
    pub what: String,
    pub commands: Vec<String>,
    pub seconds: f64,
    pub cost: f64,
}

/// A model of the graph: its name (file stem in models/) and what it is.
pub struct ModelRole {
    pub name: String,
    pub what: String,
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// Relative training cost per image at the same size (bench/densenet/: DenseNet-101 trains at a fifth
/// of MobileNetV2's speed, DenseNet-32 at the same).
fn arch_cost(arch: &str) -> f64 {
    match arch {
        "densenet101" => 5.0,
        "efficientnet-lite0" => 1.2,
        _ => 1.0,
    }
}

fn epochs_sum(e: &str) -> f64 {
    e.split(',').filter_map(|x| x.parse::<f64>().ok()).sum()
}

/// The plan's inputs beyond [`Settings`].
struct Ctx<'a> {
    out: &'a Path,
    st: &'a Settings,
    scale: &'a Scale,
    train_n: f64,
    eval_n: f64,
}

impl Ctx<'_> {
    /// --data and the split flags of `train` (whose --seed is its own; the split's goes in --split-seed).
    fn data_args(&self) -> Vec<String> {
        let mut v = vec![s("--data"), self.st.data.display().to_string()];
        if self.st.ungrouped {
            v.push(s("--ungrouped"));
        }
        if self.st.strict {
            v.push(s("--strict"));
        }
        v
    }

    /// --data and the split flags of `calibrate`, `compare` and `evaluate`.
    fn split_args(&self) -> Vec<String> {
        let mut v = self.data_args();
        v.extend([s("--seed"), s(self.st.split_seed)]);
        v
    }

    fn model(&self, name: &str) -> PathBuf {
        self.out.join("models").join(format!("{name}.onnx"))
    }

    fn model_arg(&self, name: &str) -> String {
        self.model(name).display().to_string()
    }

    /// A `train` or `distill` step whose run folder is runs/<name> and whose model goes to models/<name>.onnx.
    fn train_step(&self, name: &str, what: String, command: &str, arch: &str, epochs: &str, lr: &str, seed: u64, extra: &[String]) -> Step {
        let run = self.out.join("runs").join(name);
        let sc = self.scale;
        let mut args = vec![s(command)];
        args.extend(self.data_args());
        args.extend([s(if command == "distill" { "--student" } else { "--arch" }), s(arch)]);
        args.extend([s("--size"), s(self.st.size), s("--batch"), s(sc.batch), s("--epochs"), s(epochs), s("--lr"), s(lr)]);
        args.extend([s("--patience"), s(sc.patience), s("--label-smoothing"), s("0.1"), s("--seed"), s(seed), s("--split-seed"), s(self.st.split_seed)]);
        if let Some(m) = self.st.max_per_class {
            args.extend([s("--max-per-class"), s(m)]);
        }
        if let Some(t) = &self.st.trained_on {
            args.extend([s("--trained-on"), t.clone()]);
        }
        if !sc.pretrained && matches!(arch, "mobilenet-v2" | "efficientnet-lite0") && !extra.iter().any(|a| a == "--init") {
            args.push(s("--no-pretrained"));
        }
        args.extend(extra.iter().cloned());
        args.extend([s("--out"), run.display().to_string(), s("--force")]);
        let teacher = extra.iter().position(|a| a == "--teacher").map_or(0.0, |_| if extra.iter().any(|a| a.contains("dn101")) { 5.0 / 3.0 } else { 0.4 });
        Step {
            name: s(name),
            what,
            actions: vec![Action::Run(args), Action::Copy(run.join("model.onnx"), self.model(name))],
            run_dir: Some(run),
            cost: epochs_sum(epochs) * self.train_n * (arch_cost(arch) + teacher) + self.eval_n * arch_cost(arch),
        }
    }

    /// `quantize` then `calibrate` (every variant is calibrated on its own, never given its parent's numbers).
    /// The files go to work/<name>/ (the quantization report and calibration.json beside the model), the model
    /// then to models/.
    fn ptq_step(&self, name: &str, what: String, parent: &str, to: &str) -> Step {
        let dir = self.out.join("work").join(name);
        let raw = dir.join("uncalibrated.onnx");
        let calibrated = dir.join(format!("{name}.onnx"));
        let mut q = vec![s("quantize"), self.model_arg(parent), s("--to"), s(to), s("--out"), raw.display().to_string(), s("--force")];
        if to != "fp16" {
            q.extend([s("--calib"), self.out.join("calib").display().to_string(), s("--calib-count"), s(64)]);
        }
        let mut c = vec![s("calibrate"), s("--model"), raw.display().to_string()];
        c.extend(self.split_args());
        c.extend([s("--out"), calibrated.display().to_string(), s("--force")]);
        let actions = vec![Action::Mkdir(dir), Action::Run(q), Action::Run(c), Action::Copy(calibrated, self.model(name))];
        Step { name: s(name), what, actions, run_dir: None, cost: self.eval_n * 2.0 }
    }

    /// `train --init PARENT --qat BITS`, every layer.
    fn qat_step(&self, name: &str, what: String, parent: &str, arch: &str, bits: &str) -> Step {
        let epochs = format!("0,0,{}", self.scale.qat_epochs);
        let extra = [s("--init"), self.model_arg(parent), s("--qat"), s(bits)];
        self.train_step(name, what, "train", arch, &epochs, "0.001,0.0003,0.0001", 0, &extra)
    }

    fn compare_step(&self, name: &str, what: String, parent: &str, models: &[&str]) -> Step {
        let mut a = vec![s("compare"), s("--parent"), self.model_arg(parent)];
        a.extend(models.iter().map(|m| self.model_arg(m)));
        a.extend(self.split_args());
        a.extend([s("--out"), self.out.join("compare").join(name).display().to_string(), s("--force")]);
        a.extend([s("--latency-runs"), s(self.scale.latency_runs), s("--resamples"), s(self.scale.resamples)]);
        let cost = (models.len() + 1) as f64 * self.eval_n * 1.5;
        Step { name: format!("compare-{name}"), what, actions: vec![Action::Run(a)], run_dir: None, cost }
    }
}

/// The MobileNetV2 models, the teachers and the students, in report order.
pub fn roles(seeds: u64) -> Vec<ModelRole> {
    let r = |n: &str, w: &str| ModelRole { name: s(n), what: s(w) };
    let mut v = Vec::new();
    for k in 0..seeds {
        v.push(ModelRole { name: format!("mnv2-fp32-seed{k}"), what: format!("MobileNetV2-1.0, three-stage transfer learning, fp32, seed {k}") });
        v.push(ModelRole { name: format!("mnv2-fp16-seed{k}"), what: format!("MobileNetV2-1.0 fp16 PTQ of seed {k}") });
    }
    v.extend([
        r("mnv2-int8-ptq", "MobileNetV2-1.0 int8 PTQ (per-channel, bias correction) of seed 0"),
        r("mnv2-int8-qat", "MobileNetV2-1.0 int8 QAT from seed 0"),
        r("mnv2-int4-ptq", "MobileNetV2-1.0 int4 PTQ (blocks of 32, bias correction) of seed 0"),
        r("mnv2-int4-qat", "MobileNetV2-1.0 int4 QAT from seed 0"),
        r("dn101-teacher", "DenseNet-101 teacher, from scratch"),
        r("effnet-teacher", "EfficientNet-Lite0 teacher, ImageNet start"),
        r("dn32-kd-dn101", "DenseNet-32 student distilled from DenseNet-101"),
        r("dn32-no-kd", "DenseNet-32 student without distillation (α 0, the ablation)"),
        r("dn32-kd-effnet", "DenseNet-32 student distilled from EfficientNet-Lite0"),
        r("dn32-kd-dn101-int8-ptq", "DenseNet-32 student (from DenseNet-101) int8 PTQ"),
        r("dn32-kd-dn101-int8-qat", "DenseNet-32 student (from DenseNet-101) int8 QAT"),
    ]);
    v
}

fn plan(cx: &Ctx) -> Vec<Step> {
    let sc = cx.scale;
    let mut steps = Vec::new();
    let what = |n: &str| roles(sc.seeds).into_iter().find(|r| r.name == n).map_or_else(String::new, |r| r.what);
    for k in 0..sc.seeds {
        let n = format!("mnv2-fp32-seed{k}");
        steps.push(cx.train_step(&n, what(&n), "train", "mobilenet-v2", sc.mnv2_epochs, sc.mnv2_lr, k, &[]));
        let f = format!("mnv2-fp16-seed{k}");
        steps.push(cx.ptq_step(&f, what(&f), &n, "fp16"));
    }
    steps.push(cx.ptq_step("mnv2-int8-ptq", what("mnv2-int8-ptq"), "mnv2-fp32-seed0", "int8"));
    steps.push(cx.qat_step("mnv2-int8-qat", what("mnv2-int8-qat"), "mnv2-fp32-seed0", "mobilenet-v2", "int8"));
    steps.push(cx.ptq_step("mnv2-int4-ptq", what("mnv2-int4-ptq"), "mnv2-fp32-seed0", "int4"));
    steps.push(cx.qat_step("mnv2-int4-qat", what("mnv2-int4-qat"), "mnv2-fp32-seed0", "mobilenet-v2", "int4"));
    let teacher_epochs = format!("0,0,{}", sc.teacher_epochs);
    steps.push(cx.train_step("dn101-teacher", what("dn101-teacher"), "train", "densenet101", &teacher_epochs, "0.001,0.001,0.001", 0, &[]));
    steps.push(cx.train_step("effnet-teacher", what("effnet-teacher"), "train", "efficientnet-lite0", sc.mnv2_epochs, sc.mnv2_lr, 0, &[]));
    let student_epochs = format!("0,0,{}", sc.student_epochs);
    let run_of = |n: &str| cx.out.join("runs").join(n).display().to_string();
    for (name, extra) in [
        ("dn32-kd-dn101", vec![s("--teacher"), run_of("dn101-teacher")]),
        ("dn32-no-kd", vec![s("--alpha"), s(0)]),
        ("dn32-kd-effnet", vec![s("--teacher"), run_of("effnet-teacher")]),
    ] {
        steps.push(cx.train_step(name, what(name), "distill", "densenet32", &student_epochs, "0.001,0.001,0.001", 0, &extra));
    }
    steps.push(cx.ptq_step("dn32-kd-dn101-int8-ptq", what("dn32-kd-dn101-int8-ptq"), "dn32-kd-dn101", "int8"));
    steps.push(cx.qat_step("dn32-kd-dn101-int8-qat", what("dn32-kd-dn101-int8-qat"), "dn32-kd-dn101", "densenet32", "int8"));

    let all: Vec<String> = roles(sc.seeds).into_iter().map(|r| r.name).filter(|n| n != "mnv2-fp32-seed0" && !(n.contains("-seed") && !n.ends_with("seed0"))).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    steps.push(cx.compare_step("vs-mobilenet-fp32", s("every model against MobileNetV2 fp32 (seed 0)"), "mnv2-fp32-seed0", &all));
    steps.push(cx.compare_step(
        "students-vs-no-kd",
        s("the distilled students against the undistilled one (the effect of distillation)"),
        "dn32-no-kd",
        &["dn32-kd-dn101", "dn32-kd-effnet", "dn32-kd-dn101-int8-ptq", "dn32-kd-dn101-int8-qat"],
    ));
    steps.push(cx.compare_step(
        "student-int8-vs-fp32",
        s("the int8 student against its fp32 parent"),
        "dn32-kd-dn101",
        &["dn32-kd-dn101-int8-ptq", "dn32-kd-dn101-int8-qat"],
    ));
    for k in 1..sc.seeds {
        let (p, f) = (format!("mnv2-fp32-seed{k}"), format!("mnv2-fp16-seed{k}"));
        steps.push(cx.compare_step(&format!("seed{k}"), format!("fp16 against fp32, seed {k}"), &p, &[&f]));
    }
    if let Some(ext) = &cx.st.external {
        let actions = std::iter::once(Action::Mkdir(cx.out.join("external")))
            .chain(roles(sc.seeds).iter()
            .map(|r| {
                let json = cx.out.join("external").join(format!("{}.json", r.name));
                Action::Run(vec![
                    s("evaluate"),
                    s("--model"),
                    cx.model_arg(&r.name),
                    s("--data"),
                    ext.display().to_string(),
                    s("--external"),
                    s("--json"),
                    json.display().to_string(),
                ])
            }))
            .collect::<Vec<_>>();
        let cost = actions.len() as f64 * cx.eval_n;
        steps.push(Step { name: s("external"), what: format!("every model on {}", ext.display()), actions, run_dir: None, cost });
    }
    steps
}

/// `mriscreen` and `args` as a shell would need them typed: an argument that is empty or holds
/// a space, quote or parenthesis goes in single quotes.
pub fn shell_line(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|x| if x.is_empty() || x.contains([' ', '"', '\'', '(', ')']) { format!("'{}'", x.replace('\'', "'\\''")) } else { x.clone() }).collect();
    format!("mriscreen {}", quoted.join(" "))
}

fn command_line(a: &Action) -> String {
    match a {
        Action::Run(args) => shell_line(args),
        Action::Copy(from, to) => format!("cp {} {}", from.display(), to.display()),
        Action::Mkdir(dir) => format!("mkdir -p {}", dir.display()),
    }
}

fn hms(secs: f64) -> String {
    let t = secs.max(0.0).round() as u64;
    if t >= 3600 {
        format!("{} h {:02} min", t / 3600, (t % 3600) / 60)
    } else if t >= 60 {
        format!("{} min {:02} s", t / 60, t % 60)
    } else {
        format!("{t} s")
    }
}

fn marker(out: &Path, name: &str) -> PathBuf {
    out.join("steps").join(format!("{name}.json"))
}

fn read_done(out: &Path, name: &str) -> Option<Done> {
    serde_json::from_slice(&std::fs::read(marker(out, name)).ok()?).ok()
}

/// Runs one step's actions; a training step with a checkpoint resumes it.
/// Runs a `mriscreen` subcommand, adding its seconds to `partial` (written every 10 s, so that the time of an
/// attempt that is killed still counts when the step finishes on a later one).
fn run_child(exe: &Path, args: &[String], partial: &Path, before: f64, line: &str) -> Result<std::process::ExitStatus> {
    let mut command = std::process::Command::new(exe);
    command.args(args);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child's own attributes; it runs between
        // fork and exec, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().with_context(|| format!("starting {line}"))?;
    let t = Instant::now();
    let mut last = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            write_atomic(partial, format!("{}\n", before + t.elapsed().as_secs_f64()))?;
            return Ok(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        if last.elapsed().as_secs() >= 10 {
            write_atomic(partial, format!("{}\n", before + t.elapsed().as_secs_f64()))?;
            last = Instant::now();
        }
    }
}

/// Seconds spent on a step by earlier, interrupted attempts.
fn partial_seconds(out: &Path, name: &str) -> f64 {
    std::fs::read_to_string(partial_path(out, name)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0.0)
}

fn partial_path(out: &Path, name: &str) -> PathBuf {
    out.join("steps").join(format!("{name}.seconds"))
}

fn execute(out: &Path, step: &Step) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("locating the mriscreen executable")?;
    let resume = step.run_dir.as_ref().is_some_and(|d| d.join("checkpoint.safetensors").exists());
    let mut lines = Vec::new();
    for action in &step.actions {
        let mut action = action.clone();
        if let (Action::Run(args), true) = (&mut action, resume) {
            for a in args.iter_mut().filter(|a| *a == "--force") {
                *a = s("--resume");
            }
        }
        let line = command_line(&action);
        eprintln!("  $ {line}");
        match &action {
            Action::Run(args) => {
                let partial = partial_path(out, &step.name);
                let status = run_child(&exe, args, &partial, partial_seconds(out, &step.name), &line)?;
                if !status.success() {
                    bail!(
                        "step {} failed ({status}) running:\n  {line}\nfix what it says, then run the same reproduce command again: finished steps are kept",
                        step.name
                    );
                }
            }
            Action::Copy(from, to) => {
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
            Action::Mkdir(dir) => std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?,
        }
        lines.push(command_line(&action).replace("--resume", "--force"));
    }
    Ok(lines)
}

/// Checks --out: new, empty, or an earlier reproduction with the same settings (resumed); refuses anything else.
fn prepare_out(a: &Args, st: &Settings) -> Result<()> {
    let saved = a.out.join("reproduce.json");
    let non_empty = a.out.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    if a.out.exists() && !a.out.is_dir() {
        bail!("--out {} is a file; name a folder", a.out.display());
    }
    if non_empty && !saved.exists() {
        bail!(
            "{} already holds files and is not a reproduction (no reproduce.json); name a new or empty folder (--force only replaces an earlier reproduction)",
            a.out.display()
        );
    }
    if saved.exists() {
        if a.force {
            if !a.plan {
                std::fs::remove_dir_all(&a.out).with_context(|| format!("clearing {}", a.out.display()))?;
            }
        } else {
            let old: Settings = serde_json::from_slice(&std::fs::read(&saved)?).with_context(|| format!("{} is not a reproduction's settings file", saved.display()))?;
            if old != *st {
                bail!(
                    "{} holds a reproduction with other settings ({}, now {}); run its own command to resume it, or pass --force to start over",
                    a.out.display(),
                    serde_json::to_string(&old)?,
                    serde_json::to_string(st)?
                );
            }
            if !a.plan {
                eprintln!("resuming the reproduction in {}", a.out.display());
            }
        }
    }
    if !a.plan {
        for dir in ["steps", "runs", "work", "models"] {
            std::fs::create_dir_all(a.out.join(dir)).with_context(|| format!("creating {}", a.out.join(dir).display()))?;
        }
        write_atomic(&saved, serde_json::to_string_pretty(st)? + "\n")?;
    }
    Ok(())
}

/// Copies up to 64 training-split images, spread over each class, into `dir` for bias correction (never a
/// validation or test image, whatever the layout).
fn write_calibration_images(ds: &Dataset, dir: &Path) -> Result<()> {
    if dir.join("DONE").exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let train = ds.split(Split::Train);
    let per = 64usize.div_ceil(ds.classes.len().max(1));
    for (c, class) in ds.classes.iter().enumerate() {
        let of: Vec<usize> = train.iter().copied().filter(|&i| ds.samples[i].label as usize == c).collect();
        let take = per.min(of.len());
        for k in 0..take {
            let src = &ds.samples[of[k * of.len() / take]].path;
            let ext = src.extension().map_or_else(|| s("img"), |e| e.to_string_lossy().into_owned());
            std::fs::copy(src, dir.join(format!("{class}-{k:03}.{ext}"))).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    std::fs::write(dir.join("DONE"), "")?;
    Ok(())
}

fn dataset_options(st: &Settings) -> DatasetOptions {
    DatasetOptions { seed: st.split_seed, grouped: !st.ungrouped, strict: st.strict, ..Default::default() }
}

/// The external set's classes must be the dataset's (some may be missing).
fn check_external(dir: &Path, classes: &[String]) -> Result<()> {
    let ext = load_dataset(dir, &DatasetOptions { all_test: true, ..Default::default() }).with_context(|| format!("--external {}", dir.display()))?;
    let unknown: Vec<&String> = ext.classes.iter().filter(|c| !classes.contains(c)).collect();
    if !unknown.is_empty() {
        bail!("--external {}: classes {unknown:?} are not among the dataset's {classes:?}; rename or remove those folders", dir.display());
    }
    Ok(())
}

pub fn run(a: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let scale = if a.quick { &QUICK } else { &FULL };
    let size = a.size.unwrap_or(if a.quick { 32 } else { 96 });
    if size == 0 || size % 32 != 0 {
        bail!("--size {size}: use a multiple of 32 (e.g. 128 or 224)");
    }
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let data = match &a.data {
        Some(d) => {
            if !d.is_dir() {
                bail!("--data {}: no such folder (a dataset in Kaggle layout or one folder per class)", d.display());
            }
            absolute(d)?
        }
        None => absolute(&a.out.join("data"))?,
    };
    let external = a.external.as_deref().map(absolute).transpose()?;
    if let Some(e) = &external {
        if !e.is_dir() {
            bail!("--external {}: no such folder", e.display());
        }
    }
    let st = Settings {
        data,
        quick: a.quick,
        external,
        size,
        split_seed: a.split_seed,
        ungrouped: a.ungrouped,
        strict: a.strict,
        max_per_class: a.max_per_class,
        trained_on: a.trained_on.clone(),
    };
    if scale.pretrained && !a.plan {
        for arch in ["mobilenet-v2", "efficientnet-lite0"] {
            if let Some(p) = crate::train::default_weights(arch.parse::<Arch>().map_err(anyhow::Error::msg)?).filter(|p| !p.exists()) {
                bail!("the {arch} steps start from ImageNet weights, and there are none at {}: run scripts/fetch-pretrained first", p.display());
            }
        }
    }
    prepare_out(&a, &st)?;
    let out = &a.out;
    if !a.plan {
        eprintln!("{}", mriscreen::DISCLAIMER);
    }

    // --quick makes its own data first: a tiny SynthTumor (the dataset must exist before the plan's sizes are known).
    let data_step = a.quick.then(|| Step {
        name: s("data"),
        what: s("a tiny SynthTumor set (synthetic, not patients)"),
        actions: vec![Action::Run(vec![
            s("synth"),
            s("--out"),
            st.data.display().to_string(),
            s("--count"),
            s(40),
            s("--test-count"),
            s(8),
            s("--size-range"),
            s("64..96"),
            s("--seed"),
            s(2026),
            s("--force"),
        ])],
        run_dir: None,
        cost: 0.0,
    });
    let mut log = Progress { started, total: 0, index: 0, estimate: None };
    if let Some(step) = &data_step {
        if !a.plan {
            log.total = 1;
            log.run(out, step)?;
        }
    }
    let (ds, train_n, eval_n) = if a.plan && !st.data.is_dir() {
        (None, 1.0, 1.0)
    } else {
        eprintln!("loading {} to plan the steps", st.data.display());
        let ds = load_dataset(&st.data, &dataset_options(&st))?;
        let train = ds.split(Split::Train).len().min(a.max_per_class.map_or(usize::MAX, |m| m * ds.classes.len()));
        let eval = ds.split(Split::Val).len() + ds.split(Split::Test).len();
        if let Some(e) = &st.external {
            check_external(e, &ds.classes)?;
        }
        (Some(ds), train as f64, eval as f64)
    };
    let cx = Ctx { out, st: &st, scale, train_n, eval_n };
    let steps: Vec<Step> = data_step.into_iter().chain(plan(&cx)).collect();
    if !a.plan {
        check_finished(out, &steps)?;
    }
    if let Some(u) = &a.until {
        if !steps.iter().any(|s| &s.name == u) {
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            bail!("--until {u}: no such step; the steps are {}", names.join(", "));
        }
    }
    if a.plan {
        for (k, step) in steps.iter().enumerate() {
            println!("{:>2}. {} — {}", k + 1, step.name, step.what);
            for action in &step.actions {
                println!("      {}", command_line(action));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(ds) = &ds {
        write_calibration_images(ds, &out.join("calib"))?;
    }
    log.total = steps.len();
    for (k, step) in steps.iter().enumerate().filter(|(_, s)| s.name != "data") {
        log.index = k;
        let remaining: f64 = steps[k..].iter().filter(|s| !marker(out, &s.name).exists()).map(|s| s.cost).sum();
        log.estimate = rate(out, &steps).map(|r| r * remaining);
        log.run(out, step)?;
        if a.until.as_deref() == Some(step.name.as_str()) {
            eprintln!("stopped after {} (--until); run the same command without --until to continue", step.name);
            return Ok(ExitCode::SUCCESS);
        }
    }
    let written = report::write(out, &st, scale, &steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>(), ds.as_ref(), started)?;
    for w in &written {
        println!("written: {}", w.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The command a step records: the plan's, with `--force` (a resumed run records it as a fresh one would run).
fn recorded(step: &Step) -> Vec<String> {
    step.actions.iter().map(command_line).collect()
}

/// Every finished step must have run exactly the command the plan gives it now; otherwise its results
/// belong to another plan (other settings or scale) and would be mixed into this one.
fn check_finished(out: &Path, steps: &[Step]) -> Result<()> {
    for step in steps {
        if let Some(done) = read_done(out, &step.name) {
            let now = recorded(step);
            if done.commands != now {
                let first = done.commands.iter().zip(&now).find(|(a, b)| a != b).map_or_else(
                    || format!("{} commands then, {} now", done.commands.len(), now.len()),
                    |(a, b)| format!("then `{a}`, now `{b}`"),
                );
                bail!("{} finished with another command than this plan gives it ({first}); pass --force to start over", step.name);
            }
        }
    }
    Ok(())
}

/// Seconds per unit of estimated cost, from the finished steps (None before any has run).
fn rate(out: &Path, steps: &[Step]) -> Option<f64> {
    let (secs, cost) = steps.iter().filter_map(|s| read_done(out, &s.name)).fold((0.0, 0.0), |(a, b), d| (a + d.seconds, b + d.cost));
    (cost > 0.0).then(|| secs / cost)
}

/// Prints where the run is before each step and records each finished one.
struct Progress {
    started: Instant,
    total: usize,
    index: usize,
    /// Seconds the unfinished steps should take, from the finished ones' pace.
    estimate: Option<f64>,
}

impl Progress {
    fn run(&mut self, out: &Path, step: &Step) -> Result<()> {
        let done_before = read_done(out, &step.name);
        if let Some(d) = done_before {
            eprintln!("[{}/{}] {}: done already ({})", self.index + 1, self.total, step.name, hms(d.seconds));
            return Ok(());
        }
        eprintln!(
            "\n\x1b[1m[{}/{}] {}\x1b[0m — {} (elapsed {}; {})",
            self.index + 1,
            self.total,
            step.name,
            step.what,
            hms(self.started.elapsed().as_secs_f64()),
            self.estimate.map_or_else(|| s("time left: estimated once a step has finished"), |e| format!("about {} left", hms(e))),
        );
        let earlier = partial_seconds(out, &step.name);
        if earlier > 0.0 {
            eprintln!("  (continuing: {} spent on it before)", hms(earlier));
        }
        let t = Instant::now();
        let commands = execute(out, step)?;
        // The children's seconds (including earlier attempts) where the step ran any; else this attempt's.
        let seconds = partial_seconds(out, &step.name).max(t.elapsed().as_secs_f64());
        let done = Done { name: step.name.clone(), what: step.what.clone(), commands, seconds, cost: step.cost };
        write_atomic(&marker(out, &step.name), serde_json::to_string_pretty(&done)? + "\n")?;
        let _ = std::fs::remove_file(partial_path(out, &step.name));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::shell_line;

    #[test]
    fn a_command_line_quotes_what_the_shell_would_split_or_read() {
        let args: Vec<String> = ["reproduce", "--trained-on", r#"Nickparvar, "Brain Tumor MRI" (CC0)"#, "--note", "it's", "--empty", ""].map(String::from).into();
        assert_eq!(
            shell_line(&args),
            r#"mriscreen reproduce --trained-on 'Nickparvar, "Brain Tumor MRI" (CC0)' --note 'it'\''s' --empty ''"#
        );
    }
}
