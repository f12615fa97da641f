//! The library's front door: a [`Classifier`] built from model bytes, and
//! [`Classifier::classify`] from image bytes to a [`Prediction`]. The CLI and
//! the browser call exactly this.

use crate::backend::timing::{Phase, Profile, Stopwatch};
use crate::backend::{BackendChoice, BackendKind, BackendStatus, Engine, FeatureMap};
use crate::decode::{self, Decoded, Limits, Pixels};
use crate::familiar::{self, Familiarity};
use crate::heatmap::{self, CamWeights, Geometry, Heatmap, Preview};
use crate::input_check;
use crate::model::{keys, LoadOptions, ModelError, ModelInfo, ModelPackage};
use crate::preprocess::{scaled, to_input};
use crate::referral::{self, Evidence, ReferReason};
use crate::Error;
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use web_time::Instant;

/// One class's probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    pub class: String,
    pub probability: f32,
}

/// Milliseconds spent in each step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
}

/// The result for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable class.
    pub label: String,
    /// Every class, in the model's output order, summing to 1.
    pub probabilities: Vec<ClassProbability>,
    pub logits: Vec<f32>,
    pub backend: BackendKind,
    pub timings: Timings,
    pub width: u32,
    pub height: u32,
    pub format: String,
    /// Frames in the file (1 unless a multi-frame DICOM) and the one classified.
    pub frames: u32,
    pub frame: u32,
    /// For a DICOM file, what may be shown about it (nothing identifying).
    #[serde(skip_deserializing)]
    pub dicom: Option<crate::decode::dicom::DicomSummary>,
    /// The last feature map, when the model has a `features` output.
    #[serde(skip)]
    pub features: Option<FeatureMap>,
    /// A small grey copy of the input as the model saw it (intensity window
    /// applied), when previews are on ([`Classifier::with_previews`]).
    pub preview: Option<Preview>,
    /// Where the model looked for the top class, aligned with `preview`;
    /// `None` without previews or without a `features` output.
    pub heatmap: Option<Heatmap>,
    /// Refer for expert review: `refer_reasons` is not empty ([`referral`]).
    pub refer: bool,
    /// Every reason the result is referred for, with its numbers.
    pub refer_reasons: Vec<ReferReason>,
    /// The share of the image's pixels in colour ([`input_check::colour_fraction`]).
    #[serde(default)]
    pub colour_fraction: f32,
    /// Distance of the input's features to the training images
    /// ([`familiar`]), when the model carries the statistics.
    #[serde(default)]
    pub familiarity_distance: Option<f32>,
    /// The model's limit for that distance.
    #[serde(default)]
    pub familiarity_limit: Option<f32>,
}

/// A loaded model plus the budgets its inputs are held to.
pub struct Classifier {
    info: ModelInfo,
    engine: Engine,
    limits: Limits,
    /// The final linear layer, for heat-maps (`None` if not found).
    cam: Option<CamWeights>,
    /// Training-image feature statistics (`mriscreen.familiarity`), if any.
    familiarity: Option<Familiarity>,
    previews: bool,
    /// How long each part of loading took (reading the file, then the engine's steps).
    load_phases: Vec<Phase>,
}

/// The model's `mriscreen.familiarity` statistics, checked against its
/// classes and its `features` output.
fn familiarity_of(info: &ModelInfo) -> Result<Option<Familiarity>, ModelError> {
    let Some(value) = info.metadata.get(keys::FAMILIARITY) else { return Ok(None) };
    let invalid = |expected: String| {
        let shown: String = value.chars().take(60).collect();
        ModelError::Metadata { key: keys::FAMILIARITY.into(), value: format!("{shown}…"), expected }
    };
    if info.features_name.is_none() {
        return Err(invalid("the model has no `features` output to compare; export it again with one, or drop this metadata".into()));
    }
    Familiarity::from_json(value, info.classes.len()).map(Some).map_err(|e| invalid(format!("{e}; calibrate the model again")))
}

/// Softmax of `logits / temperature`, computed stably in f64.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = f64::from(temperature);
    let max = logits.iter().map(|&v| f64::from(v) / t).fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&v| (f64::from(v) / t - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

impl Classifier {
    /// Validates `model` (see [`ModelPackage::read`]) and loads it on the CPU
    /// backend, synchronously.
    pub fn new(model: &[u8], opts: &LoadOptions) -> Result<Self, Error> {
        let (package, read) = ModelPackage::read_timed(model, opts)?;
        let familiarity = familiarity_of(&package.info)?;
        let engine = Engine::cpu(&package)?;
        Ok(Self::with_engine(package, engine, familiarity, read))
    }

    /// Validates `model` and loads it on the backend `choice` asks for (see
    /// [`Engine`]); with [`BackendChoice::Auto`] a WebGPU failure is not an
    /// error but a CPU fallback recorded in [`status`](Self::status).
    pub async fn load(model: &[u8], opts: &LoadOptions, choice: BackendChoice) -> Result<Self, Error> {
        let (package, read) = ModelPackage::read_timed(model, opts)?;
        let familiarity = familiarity_of(&package.info)?;
        let engine = Engine::load(&package, choice).await?;
        Ok(Self::with_engine(package, engine, familiarity, read))
    }

    fn with_engine(package: ModelPackage, engine: Engine, familiarity: Option<Familiarity>, mut load_phases: Vec<Phase>) -> Self {
        let mut watch = Stopwatch::start();
        let cam = package.info.features_name.as_ref().and_then(|_| CamWeights::from_model(&package.proto, &package.info.logits_name));
        watch.lap("heat-map weights");
        load_phases.extend(engine.load_phases().iter().cloned());
        load_phases.extend(watch.phases());
        Classifier { info: package.info, engine, limits: Limits::default(), cam, familiarity, previews: false, load_phases }
    }

    /// How long each part of loading the model took, in order.
    pub fn load_phases(&self) -> &[Phase] {
        &self.load_phases
    }

    /// A per-operation profile of `runs` inferences on a fixed pseudo-random
    /// input (the values do not change the time), on the backend in use.
    pub async fn profile(&self, runs: usize) -> Result<Profile, Error> {
        let input = crate::rng::Rng::new(1).vec(self.info.input.len(), -2.0, 2.0);
        Ok(self.engine.profile(&input, runs).await?)
    }

    /// Adds a [`Preview`] and, for a model with a `features` output, a
    /// [`Heatmap`] to every prediction (the page draws them).
    pub fn with_previews(mut self, on: bool) -> Self {
        self.previews = on;
        self
    }

    /// Which backend runs, and why after a fallback.
    /// Records why the CPU runs, when the caller chose it for a reason the
    /// library cannot see (the page's look at the browser's adapter).
    pub fn set_cpu_reason(&mut self, reason: String) {
        self.engine.set_cpu_reason(reason);
    }

    pub fn status(&self) -> &BackendStatus {
        self.engine.status()
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Whether the model carries training-image feature statistics, so the
    /// referral rule checks how familiar each input is.
    pub fn has_familiarity(&self) -> bool {
        self.familiarity.is_some()
    }

    /// Decodes, preprocesses and classifies one image file's bytes (the
    /// middle frame of a multi-frame DICOM file).
    pub async fn classify(&mut self, image: &[u8]) -> Result<Prediction, Error> {
        self.classify_frame(image, None).await
    }

    /// Like [`classify`](Self::classify), for frame `frame` of a multi-frame
    /// DICOM file (`None`: the middle one; ordinary images have frame 0 only).
    pub async fn classify_frame(&mut self, image: &[u8], frame: Option<u32>) -> Result<Prediction, Error> {
        let t0 = Instant::now();
        let decoded = decode::decode_frame(image, &self.limits, frame)?;
        self.classify_decoded(decoded, t0.elapsed().as_secs_f64() * 1e3).await
    }

    /// Classifies a decoded file, with what the result says of the file.
    async fn classify_decoded(&mut self, decoded: Decoded, decode_ms: f64) -> Result<Prediction, Error> {
        let mut p = self.classify_image(&decoded.image).await?;
        p.timings.decode_ms = decode_ms;
        p.format = decoded.format.to_string();
        p.frames = decoded.frames;
        p.frame = decoded.frame;
        p.dicom = decoded.dicom;
        Ok(p)
    }

    /// Decodes frame `frame` of one image file's bytes into plain [`Pixels`],
    /// within `limits`, for another build's
    /// [`classify_pixels`](Self::classify_pixels).
    pub fn decode_pixels(image: &[u8], limits: &Limits, frame: Option<u32>) -> Result<Pixels, Error> {
        let t0 = Instant::now();
        let decoded = decode::decode_frame(image, limits, frame)?;
        Ok(Pixels::of(&decoded, t0.elapsed().as_secs_f64() * 1e3))
    }

    /// Classifies an image another build of the engine decoded (the page's
    /// CPU-only engine has no TIFF or WebP decoder: its worker decodes such a
    /// file with the full engine); held to this classifier's limits like a
    /// file it decodes itself.
    pub async fn classify_pixels(&mut self, pixels: Pixels) -> Result<Prediction, Error> {
        let decode_ms = pixels.decode_ms;
        let decoded = pixels.into_decoded(&self.limits)?;
        self.classify_decoded(decoded, decode_ms).await
    }

    /// Classifies an already decoded image.
    pub async fn classify_image(&mut self, image: &DynamicImage) -> Result<Prediction, Error> {
        let t0 = Instant::now();
        // `preprocess::preprocess` in its two halves, keeping the scaled plane for the preview.
        let spec = &self.info.input;
        let plane = scaled(image, spec);
        let input = to_input(&plane, spec);
        let colour_fraction = input_check::colour_fraction(image);
        let t1 = Instant::now();
        let (out, backend) = self.engine.run(&input).await?;
        let t2 = Instant::now();
        let probs = softmax(&out.logits, self.info.temperature);
        let best = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let familiarity_distance = match (&self.familiarity, &out.features) {
            (Some(stats), Some(features)) => Some(stats.distance(&familiar::pool(features))),
            _ => None,
        };
        let familiarity_limit = self.familiarity.as_ref().map(|s| s.limit);
        let evidence = Evidence {
            top_probability: probs[best],
            colour_fraction,
            familiarity: familiarity_distance.zip(familiarity_limit),
        };
        let refer_reasons = referral::reasons(&evidence, self.info.threshold());
        let preview = self.previews.then(|| heatmap::preview(&plane));
        let heatmap = match (&preview, &out.features, &self.cam) {
            (Some(pv), Some(features), Some(weights)) => heatmap::cam(features, weights, best).map(|map| {
                let geometry = Geometry {
                    image_w: plane.width,
                    image_h: plane.height,
                    input_w: spec.width,
                    input_h: spec.height,
                    resize: spec.resize,
                };
                heatmap::heatmap(&map, &geometry, (pv.width, pv.height), &self.info.classes[best])
            }),
            _ => None,
        };
        Ok(Prediction {
            label: self.info.classes[best].clone(),
            probabilities: self
                .info
                .classes
                .iter()
                .zip(&probs)
                .map(|(class, &probability)| ClassProbability { class: class.clone(), probability })
                .collect(),
            logits: out.logits,
            backend,
            timings: Timings {
                decode_ms: 0.0,
                preprocess_ms: (t1 - t0).as_secs_f64() * 1e3,
                inference_ms: (t2 - t1).as_secs_f64() * 1e3,
            },
            width: image.width(),
            height: image.height(),
            format: String::new(),
            frames: 1,
            frame: 0,
            dicom: None,
            features: out.features,
            preview,
            heatmap,
            refer: !refer_reasons.is_empty(),
            refer_reasons,
            colour_fraction,
            familiarity_distance,
            familiarity_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::softmax;

    #[test]
    fn softmax_is_stable_and_tempered() {
        let p = softmax(&[1000.0, 1000.0], 1.0);
        assert_eq!(p, vec![0.5, 0.5]);
        let p = softmax(&[0.0, 2.0f32.ln()], 1.0);
        assert!((p[1] - 2.0 / 3.0).abs() < 1e-6);
        // Temperature 2 flattens: exp(ln2 / 2) = sqrt 2.
        let p = softmax(&[0.0, 2.0f32.ln()], 2.0);
        assert!((p[1] - 2f32.sqrt() / (1.0 + 2f32.sqrt())).abs() < 1e-6);
    }
}
