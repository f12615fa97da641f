//! Knowledge distillation (Hinton et al. 2015) inside the `train` loop: the
//! student learns from the labels and from a teacher's softened outputs,
//!
//!   loss = α · τ² · KL(softmax(t/τ) ‖ softmax(s/τ)) + (1 − α) · CE(labels),
//!
//! with *consistent teaching* (Beyer et al. 2022, "Knowledge distillation: a
//! good teacher is patient and consistent"): the teacher is run every step on
//! the very augmented (and, with `--mixup`, mixed) image the student sees, at
//! the teacher's own input size; no logits are precomputed, except in stage
//! 1, where the student trains on cached features of unaugmented images and
//! the teacher's logits of those same images are cached beside them.
//!
//! The teacher is any classifier the library loads (one of our runs or a
//! third-party ONNX file), run on the CPU backend, images in parallel. Its
//! classes are matched to the dataset's by name (`--teacher-map` renames).

use crate::data::{Dataset, Split};
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, D};
use mriscreen::backend::CpuBackend;
use mriscreen::model::{LoadOptions, ModelPackage};
use mriscreen::preprocess::InputSpec;
use mriscreen::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a run distils (saved with the run's configuration).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Distill {
    /// The teacher: an ONNX file, or a run folder (its model.onnx). `None`
    /// only with α = 0 (the no-distillation ablation).
    pub teacher: Option<PathBuf>,
    /// Weight of the distillation term (0 = labels only, 1 = teacher only).
    pub alpha: f32,
    /// Softmax temperature of both sides of the KL term.
    pub tau: f32,
    /// Beta(m, m) mixing of image pairs within a batch (0 = no mixup).
    pub mixup: f32,
    /// Teacher class name → dataset class name, for teachers that name them differently.
    pub teacher_map: Vec<(String, String)>,
}

impl Distill {
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            bail!("--alpha {} must be between 0 (labels only) and 1 (teacher only)", self.alpha);
        }
        if !(self.tau >= 1.0 && self.tau <= 20.0) {
            bail!("--tau {} must be between 1 and 20 (1 = the teacher's own probabilities; 2–4 is usual)", self.tau);
        }
        if !(0.0..=10.0).contains(&self.mixup) {
            bail!("--mixup {} must be between 0 (off) and 10", self.mixup);
        }
        if self.alpha > 0.0 && self.teacher.is_none() {
            bail!("--teacher is required unless --alpha is 0 (the run without distillation)");
        }
        Ok(())
    }

    /// One line for the model card.
    pub fn describe(&self, teacher: Option<&Teacher>) -> String {
        let mixup = if self.mixup > 0.0 { format!(", mixup Beta({0}, {0})", self.mixup) } else { String::new() };
        match teacher {
            Some(t) => format!(
                "distilled from {} ({}, sha256 {}…): α = {}, τ = {}{mixup}; the teacher saw the same augmented image every step",
                t.name,
                t.arch,
                &t.sha256[..12],
                self.alpha,
                self.tau
            ),
            None => format!("no distillation (α = 0: labels only, the ablation of a distilled run){mixup}"),
        }
    }
}

/// A loaded teacher.
pub struct Teacher {
    backend: CpuBackend,
    pub spec: InputSpec,
    /// For each dataset class, the teacher's output column.
    columns: Vec<usize>,
    pub name: String,
    pub arch: String,
    pub sha256: String,
}

impl Teacher {
    /// Loads `path` (an ONNX file or a run folder holding model.onnx) and
    /// matches its classes to `classes`.
    pub fn load(path: &Path, classes: &[String], map: &[(String, String)]) -> Result<Teacher> {
        let file = if path.is_dir() { path.join("model.onnx") } else { path.to_path_buf() };
        if !file.exists() {
            bail!("--teacher {}: no such file (a run folder must hold model.onnx; train or distill it first)", file.display());
        }
        let bytes = crate::files::read_limited(&file, mriscreen::model::DEFAULT_MAX_MODEL_BYTES)?;
        let package = ModelPackage::read(&bytes, &LoadOptions::default()).with_context(|| format!("--teacher {}", file.display()))?;
        let columns = match_classes(&package.info.classes, classes, map)?;
        let backend = CpuBackend::load(&package).with_context(|| format!("--teacher {}: the CPU backend cannot run it", file.display()))?;
        Ok(Teacher {
            backend,
            spec: package.info.input.clone(),
            columns,
            name: path.display().to_string(),
            arch: package.info.arch.clone().unwrap_or_else(|| "unknown architecture".into()),
            sha256: package.info.sha256.clone(),
        })
    }

    /// Logits `[N, C]` (dataset class order, row-major) of `n` images
    /// preprocessed with [`Teacher::spec`] and laid end to end.
    pub fn logits(&self, inputs: &[f32]) -> Result<Vec<f32>> {
        let per = self.spec.len();
        let rows: Vec<Vec<f32>> = inputs
            .par_chunks(per)
            .map(|x| {
                let out = self.backend.run(x)?;
                Ok(self.columns.iter().map(|&c| out.logits[c]).collect())
            })
            .collect::<Result<_, mriscreen::InferenceError>>()
            .context("running the teacher")?;
        Ok(rows.concat())
    }

    /// Logits of a whole split, unaugmented (the stage-1 cache).
    pub fn split_logits(&self, ds: &Dataset, split: Split, batch: usize) -> Result<Vec<f32>> {
        let n = ds.split(split).len();
        let pb = crate::files::progress(n.div_ceil(batch), format!("teacher {}", split.name()));
        let positions: Vec<usize> = (0..n).collect();
        let mut out = Vec::with_capacity(n * self.columns.len());
        for chunk in positions.chunks(batch) {
            let (x, _) = ds.batch(split, chunk, &self.spec, None);
            out.extend(self.logits(&x)?);
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(out)
    }
}

/// The teacher's output column of each dataset class. Names match exactly,
/// or through `map` (teacher name → dataset name).
fn match_classes(teacher: &[String], data: &[String], map: &[(String, String)]) -> Result<Vec<usize>> {
    let renamed: Vec<String> = teacher
        .iter()
        .map(|t| map.iter().find(|(from, _)| from == t).map_or_else(|| t.clone(), |(_, to)| to.clone()))
        .collect();
    let columns: Option<Vec<usize>> = data.iter().map(|d| renamed.iter().position(|r| r == d)).collect();
    match columns {
        Some(c) if teacher.len() == data.len() => Ok(c),
        _ => bail!(
            "the teacher's classes [{}] do not match the dataset's [{}]; if they are the same classes under other \
             names, pass --teacher-map TEACHER=DATASET,… (e.g. --teacher-map no_tumor=notumor)",
            teacher.join(", "),
            data.join(", ")
        ),
    }
}

/// Parses `--teacher-map a=b,c=d`.
pub fn parse_map(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Ok((a.trim().to_string(), b.trim().to_string())),
            _ => Err(format!("`{pair}` is not TEACHER_CLASS=DATASET_CLASS")),
        })
        .collect()
}

/// τ² · mean over the batch of KL(softmax(t/τ) ‖ softmax(s/τ)) (the caller
/// weighs it by α); the teacher's logits are constants (`[N, C]`, row-major).
pub fn kd_loss(student: &Tensor, teacher: &[f32], tau: f32) -> candle_core::Result<Tensor> {
    let (n, c) = student.dims2()?;
    let p: Vec<f32> = teacher.chunks(c).flat_map(|row| mriscreen::softmax(row, tau)).collect();
    let plogp: f64 = p.iter().filter(|&&q| q > 0.0).map(|&q| f64::from(q) * f64::from(q).ln()).sum();
    let p = Tensor::from_vec(p, (n, c), student.device())?;
    let log_q = candle_nn::ops::log_softmax(&(student / f64::from(tau))?, D::Minus1)?;
    // KL = Σ p log p − Σ p log q; the first term is a constant.
    let cross = (p * log_q)?.sum_all()?.neg()?;
    ((cross + plogp)? / n as f64)? * f64::from(tau * tau)
}

/// Mixup (Zhang et al. 2018) of a batch: image `i` becomes
/// λᵢ·xᵢ + (1 − λᵢ)·x_π(i) with λᵢ ~ Beta(m, m) and π a seeded permutation.
/// Mixing is done on the preprocessed tensors, with the same pairs and
/// weights for every view of the batch (student and teacher inputs at their
/// own sizes), so both see a mixture of the same two augmented images.
pub struct Mix {
    pub partner: Vec<usize>,
    pub lambda: Vec<f32>,
}

impl Mix {
    pub fn draw(n: usize, m: f32, seed: u64) -> Mix {
        let mut rng = Rng::new(seed ^ 0x313C);
        let mut partner: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            partner.swap(i, rng.below(i + 1));
        }
        let lambda = (0..n).map(|_| beta(&mut rng, m)).collect();
        Mix { partner, lambda }
    }

    /// Mixes `n` inputs of `per` values each, laid end to end.
    pub fn images(&self, x: &[f32], per: usize) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for (i, dst) in out.chunks_mut(per).enumerate() {
            let (a, b) = (&x[i * per..(i + 1) * per], &x[self.partner[i] * per..(self.partner[i] + 1) * per]);
            let l = self.lambda[i];
            for ((d, &u), &v) in dst.iter_mut().zip(a).zip(b) {
                *d = l * u + (1.0 - l) * v;
            }
        }
        out
    }

    /// Per-sample loss weights from class weights: each mixed pair weighs
    /// λ·w(label) + (1 − λ)·w(partner's label); all 1 without class weights.
    pub fn weights(&self, labels: &[u32], class_weights: Option<&[f32]>) -> Vec<f32> {
        (0..labels.len())
            .map(|i| match class_weights {
                Some(w) => self.lambda[i] * w[labels[i] as usize] + (1.0 - self.lambda[i]) * w[labels[self.partner[i]] as usize],
                None => 1.0,
            })
            .collect()
    }

    /// Soft targets `[N, C]`: the mixed one-hot labels, with label smoothing ε.
    pub fn targets(&self, labels: &[u32], classes: usize, smoothing: f32) -> Vec<f32> {
        let off = smoothing / classes as f32;
        let mut t = vec![off; labels.len() * classes];
        for (i, row) in t.chunks_mut(classes).enumerate() {
            row[labels[i] as usize] += self.lambda[i] * (1.0 - smoothing);
            row[labels[self.partner[i]] as usize] += (1.0 - self.lambda[i]) * (1.0 - smoothing);
        }
        t
    }
}

/// A Beta(a, a) draw from two Gamma(a) draws (Marsaglia–Tsang, with the
/// a < 1 boost).
fn beta(rng: &mut Rng, a: f32) -> f32 {
    let x = gamma(rng, a);
    let y = gamma(rng, a);
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

fn gamma(rng: &mut Rng, a: f32) -> f32 {
    if a < 1.0 {
        let u = rng.uniform().max(1e-12);
        return gamma(rng, a + 1.0) * u.powf(1.0 / a);
    }
    let d = a - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // A standard normal draw (Box–Muller).
        let x = (-2.0 * rng.uniform().max(1e-12).ln()).sqrt() * (std::f32::consts::TAU * rng.uniform()).cos();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = rng.uniform().max(1e-12);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kd_loss_is_the_tempered_kl_by_hand() {
        let d = Device::Cpu;
        let s = Tensor::new(&[[0f32, 2f32.ln()]], &d).unwrap();
        // The same logits: no divergence.
        let same: f32 = kd_loss(&s, &[0.0, 2f32.ln()], 1.0).unwrap().to_scalar().unwrap();
        assert!(same.abs() < 1e-6, "{same}");
        // τ = 2: student logits [0, ln2]/2 → q = [1/(1+√2), √2/(1+√2)]; teacher [0, 0] → p = [½, ½].
        let got: f32 = kd_loss(&s, &[0.0, 0.0], 2.0).unwrap().to_scalar().unwrap();
        let q1 = 1.0 / (1.0 + 2f32.sqrt());
        let q2 = 1.0 - q1;
        let kl = 0.5 * (0.5 / q1).ln() + 0.5 * (0.5 / q2).ln();
        assert!((got - 4.0 * kl).abs() < 1e-5, "{got} vs {}", 4.0 * kl);
        assert!(got > 0.0);
    }

    #[test]
    fn a_student_trained_on_the_kd_loss_alone_takes_the_teachers_answers() {
        // A linear student on fixed inputs, taught by a linear teacher it can
        // imitate exactly: the KL term falls towards 0 and the student ends up
        // giving the teacher's answers.
        let d = Device::Cpu;
        let mut rng = Rng::new(4);
        let x = Tensor::from_vec(rng.vec(32 * 5, -1.0, 1.0), (32, 5), &d).unwrap();
        let wt = Tensor::from_vec(rng.vec(5 * 3, -3.0, 3.0), (5, 3), &d).unwrap();
        let teacher_t = x.matmul(&wt).unwrap();
        let teacher: Vec<f32> = teacher_t.flatten_all().unwrap().to_vec1().unwrap();
        let w = Var::from_tensor(&Tensor::zeros((5, 3), candle_core::DType::F32, &d).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(3, candle_core::DType::F32, &d).unwrap()).unwrap();
        let mut opt = crate::train::AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], 0.05, 0.0).unwrap();
        let logits = |w: &Var, b: &Var| x.matmul(w.as_tensor()).unwrap().broadcast_add(b.as_tensor()).unwrap();
        let first: f32 = kd_loss(&logits(&w, &b), &teacher, 2.0).unwrap().to_scalar().unwrap();
        for _ in 0..500 {
            let loss = kd_loss(&logits(&w, &b), &teacher, 2.0).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let last: f32 = kd_loss(&logits(&w, &b), &teacher, 2.0).unwrap().to_scalar().unwrap();
        assert!(last < 0.02 * first, "the loss fell from {first} to {last}");
        let got = crate::train::loss::argmax(&logits(&w, &b)).unwrap();
        assert_eq!(got, crate::train::loss::argmax(&teacher_t).unwrap());
    }

    #[test]
    fn classes_match_by_name_in_any_order_or_through_the_map() {
        let data = names(&["glioma", "meningioma", "notumor", "pituitary"]);
        let t = names(&["pituitary", "notumor", "meningioma", "glioma"]);
        assert_eq!(match_classes(&t, &data, &[]).unwrap(), vec![3, 2, 1, 0]);
        let kaggle = names(&["glioma_tumor", "meningioma_tumor", "no_tumor", "pituitary_tumor"]);
        let err = match_classes(&kaggle, &data, &[]).unwrap_err().to_string();
        assert!(err.contains("glioma_tumor") && err.contains("notumor") && err.contains("--teacher-map"), "{err}");
        let map = parse_map("glioma_tumor=glioma, meningioma_tumor=meningioma,no_tumor=notumor,pituitary_tumor=pituitary").unwrap();
        assert_eq!(match_classes(&kaggle, &data, &map).unwrap(), vec![0, 1, 2, 3]);
        // A teacher with a class more or fewer is refused even if the names cover the dataset's.
        assert!(match_classes(&names(&["glioma", "meningioma", "notumor", "pituitary", "other"]), &data, &[]).is_err());
        assert!(match_classes(&data[..3], &data, &[]).is_err());
        assert!(parse_map("glioma").unwrap_err().contains("TEACHER_CLASS=DATASET_CLASS"));
        assert!(parse_map("=x").is_err());
    }

    #[test]
    fn mixup_pairs_images_and_labels_with_the_same_weights() {
        let m = Mix::draw(6, 0.4, 1);
        let mut sorted = m.partner.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>(), "a permutation");
        assert!(m.lambda.iter().all(|l| (0.0..=1.0).contains(l)));
        let x: Vec<f32> = (0..6).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
        let mixed = m.images(&x, 2);
        for i in 0..6 {
            let (l, j) = (m.lambda[i], m.partner[i] as f32);
            assert!((mixed[2 * i] - (l * i as f32 + (1.0 - l) * j)).abs() < 1e-5);
        }
        let labels = [0u32, 1, 2, 3, 0, 1];
        let t = m.targets(&labels, 4, 0.1);
        for (i, row) in t.chunks(4).enumerate() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let own = row[labels[i] as usize];
            assert!(own >= 0.025 + m.lambda[i] * 0.9 - 1e-5, "row {i}: {row:?}");
        }
        assert_eq!(m.weights(&labels, None), vec![1.0; 6]);
        // Beta(m, m) has mean ½; small m pushes draws to the ends.
        let many = Mix::draw(4000, 0.2, 2).lambda;
        let mean = many.iter().sum::<f32>() / many.len() as f32;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert!(many.iter().filter(|&&l| !(0.1..=0.9).contains(&l)).count() > many.len() / 2);
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let ok = Distill { teacher: Some("t.onnx".into()), alpha: 0.7, tau: 4.0, mixup: 0.0, teacher_map: vec![] };
        assert!(ok.check().is_ok());
        for bad in [
            Distill { alpha: 1.5, ..ok.clone() },
            Distill { tau: 0.5, ..ok.clone() },
            Distill { tau: f32::NAN, ..ok.clone() },
            Distill { mixup: -1.0, ..ok.clone() },
            Distill { teacher: None, ..ok.clone() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(Distill { teacher: None, alpha: 0.0, ..ok }.check().is_ok(), "the ablation needs no teacher");
    }
}
