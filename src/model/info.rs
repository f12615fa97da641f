//! What a model is: its classes, input spec, precision and provenance, read
//! from the `mriscreen.*` metadata and completed by the user's [`Overrides`].

use super::ModelError;
use crate::preprocess::{InputSpec, Intensity, Resize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The `metadata_props` keys of the ONNX contract. Encoding, read and
/// written alike: lists and numbers are JSON (`["a","b"]`, `[0.5, 0.5, 0.5]`,
/// `[224, 224]` as [width, height], `0.49`); names are plain text
/// (`letterbox`, `fp16`). The reader also accepts the older plain forms
/// (`224`, `256x192`, `0.5,0.5,0.5`).
pub mod keys {
    pub const CLASSES: &str = "mriscreen.classes";
    pub const INPUT_SIZE: &str = "mriscreen.input_size";
    pub const MEAN: &str = "mriscreen.mean";
    pub const STD: &str = "mriscreen.std";
    pub const RESIZE: &str = "mriscreen.resize";
    /// `robust` (0.5–99.5 percentile window) or `unit`; absent means `robust`.
    pub const INTENSITY: &str = "mriscreen.intensity";
    pub const ARCH: &str = "mriscreen.arch";
    pub const PRECISION: &str = "mriscreen.precision";
    pub const TEMPERATURE: &str = "mriscreen.temperature";
    /// Top calibrated probability below which a result is flagged "refer
    /// for expert review" (chosen on the validation split; see `calibrate`).
    pub const REFER_THRESHOLD: &str = "mriscreen.refer_threshold";
    pub const TRAINED_ON: &str = "mriscreen.trained_on";
    /// Feature statistics of the training images and the distance limit
    /// above which an input is "unlike the training images" (JSON; see
    /// `crate::familiar`).
    pub const FAMILIARITY: &str = "mriscreen.familiarity";
    /// A compressed model's fp32 original: its SHA-256 (64 hex digits).
    pub const PARENT_SHA256: &str = "mriscreen.parent_sha256";
    /// How a compressed model was made (JSON object: method, bits, block,
    /// range setting, bias correction; written by `mriscreen quantize` and
    /// quantization-aware training).
    pub const QUANTIZATION: &str = "mriscreen.quantization";
}

/// How the weights are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Int8,
    Int4,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
        })
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            "int4" => Ok(Precision::Int4),
            _ => Err("expected fp32, fp16, int8 or int4".into()),
        }
    }
}

/// What the user supplies for a model that lacks metadata. A value given here
/// wins over the file's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    pub classes: Option<Vec<String>>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub resize: Option<Resize>,
    pub intensity: Option<Intensity>,
    /// (width, height).
    pub input_size: Option<(usize, usize)>,
}

/// A validated model's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Class names in output order.
    pub classes: Vec<String>,
    pub input: InputSpec,
    pub arch: Option<String>,
    pub precision: Precision,
    /// Softmax temperature from calibration (1 when uncalibrated).
    pub temperature: f32,
    /// The calibrated "refer for expert review" threshold, if the model has
    /// one ([`crate::referral`] says what applies without).
    pub refer_threshold: Option<f32>,
    pub trained_on: Option<String>,
    /// SHA-256 of the fp32 model a compressed one was made from.
    pub parent_sha256: Option<String>,
    /// How it was compressed (`mriscreen.quantization`, a JSON object).
    pub quantization: Option<String>,
    pub input_name: String,
    pub logits_name: String,
    pub features_name: Option<String>,
    pub sha256: String,
    pub bytes: usize,
    /// Defaults applied because neither the file nor the user said otherwise;
    /// shown to the user, since a wrong guess changes every number.
    pub assumed: Vec<String>,
    /// All `metadata_props` of the file.
    pub metadata: BTreeMap<String, String>,
    /// (width, height) from the user or the metadata, before the graph is consulted.
    #[serde(skip)]
    pub(super) declared_size: Option<(usize, usize)>,
}

/// What a model file says about itself: every `mriscreen.*` value, as the one
/// writer ([`Description::entries`]) puts them in and
/// `ModelInfo::from_metadata` reads them back (round-trip tested). The
/// trainer's export, `calibrate` and the random reference models all write
/// through it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub classes: Vec<String>,
    /// Size, mean, std, resize and intensity (the layout comes from the graph).
    pub input: InputSpec,
    pub arch: Option<String>,
    pub precision: Precision,
    pub temperature: f32,
    pub refer_threshold: Option<f32>,
    pub trained_on: Option<String>,
    /// The familiarity statistics as JSON ([`crate::familiar::Familiarity::to_json`]).
    pub familiarity: Option<String>,
    /// SHA-256 of the fp32 model this one was compressed from.
    pub parent_sha256: Option<String>,
    /// How it was compressed (a JSON object).
    pub quantization: Option<String>,
}

impl Description {
    /// An uncalibrated fp32 model's description.
    pub fn new(classes: Vec<String>, input: InputSpec) -> Self {
        Description {
            classes,
            input,
            arch: None,
            precision: Precision::Fp32,
            temperature: 1.0,
            refer_threshold: None,
            trained_on: None,
            familiarity: None,
            parent_sha256: None,
            quantization: None,
        }
    }

    /// The `metadata_props` entries, in the documented encoding (see [`keys`]).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let json = |v: &[f32]| serde_json::to_string(v).unwrap_or_default();
        let mut out = vec![
            (keys::CLASSES, serde_json::to_string(&self.classes).unwrap_or_default()),
            (keys::INPUT_SIZE, format!("[{}, {}]", self.input.width, self.input.height)),
            (keys::MEAN, json(&self.input.mean)),
            (keys::STD, json(&self.input.std)),
            (keys::RESIZE, name_of(&self.input.resize)),
            (keys::INTENSITY, name_of(&self.input.intensity)),
            (keys::PRECISION, self.precision.to_string()),
            (keys::TEMPERATURE, serde_json::to_string(&self.temperature).unwrap_or_default()),
        ];
        let optional = [
            (keys::ARCH, self.arch.clone()),
            (keys::REFER_THRESHOLD, self.refer_threshold.map(|t| serde_json::to_string(&t).unwrap_or_default())),
            (keys::TRAINED_ON, self.trained_on.clone()),
            (keys::FAMILIARITY, self.familiarity.clone()),
            (keys::PARENT_SHA256, self.parent_sha256.clone()),
            (keys::QUANTIZATION, self.quantization.clone()),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        out
    }
}

/// A unit enum's serde name (`letterbox`, `robust`).
fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn invalid(key: &str, value: &str, expected: &str) -> ModelError {
    ModelError::Metadata { key: key.into(), value: value.into(), expected: expected.into() }
}

fn parse_class_list(key: &str, value: &str) -> Result<Vec<String>, ModelError> {
    serde_json::from_str::<Vec<String>>(value).map_err(|_| invalid(key, value, "expected a JSON list of class names"))
}

fn parse_triple_json(key: &str, value: &str) -> Result<[f32; 3], ModelError> {
    let expected = || invalid(key, value, "expected a JSON list of 1 or 3 numbers, e.g. [0.5, 0.5, 0.5]");
    let v: Vec<f32> = match serde_json::from_str(value) {
        Ok(v) => v,
        Err(_) => return parse_triple(value).ok_or_else(expected),
    };
    match v.as_slice() {
        [x] => Ok([*x; 3]),
        [r, g, b] => Ok([*r, *g, *b]),
        _ => Err(expected()),
    }
}

/// `mriscreen.input_size`: a JSON list `[width, height]` or `[size]`, or the
/// plain `224` / `256x192`.
fn parse_size_metadata(value: &str) -> Option<(usize, usize)> {
    let (w, h) = match serde_json::from_str::<Vec<usize>>(value) {
        Ok(v) => match v.as_slice() {
            [n] => (*n, *n),
            [w, h] => (*w, *h),
            _ => return None,
        },
        Err(_) => return parse_size(value),
    };
    (w > 0 && h > 0 && w <= 4096 && h <= 4096).then_some((w, h))
}

/// Parses an input size: `224` (square) or `WxH` such as `256x192`.
pub fn parse_size(s: &str) -> Option<(usize, usize)> {
    let s = s.trim();
    let (w, h) = match s.split_once(['x', 'X', '×']) {
        Some((w, h)) => (w.trim().parse().ok()?, h.trim().parse().ok()?),
        None => {
            let n = s.parse().ok()?;
            (n, n)
        }
    };
    (w > 0 && h > 0 && w <= 4096 && h <= 4096).then_some((w, h))
}

/// Parses `r,g,b` (or one number for all three channels).
pub fn parse_triple(s: &str) -> Option<[f32; 3]> {
    let v: Vec<f32> = s.split(',').map(|p| p.trim().parse::<f32>()).collect::<Result<_, _>>().ok()?;
    match v.as_slice() {
        [x] => Some([*x; 3]),
        [r, g, b] => Some([*r, *g, *b]),
        _ => None,
    }
}

/// Parses `a,b,c` into class names.
pub fn parse_classes(s: &str) -> Vec<String> {
    s.split(',').map(|c| c.trim().to_string()).collect()
}

fn check_classes(classes: &[String]) -> Result<(), String> {
    if classes.is_empty() {
        return Err("the class list is empty".into());
    }
    if let Some(c) = classes.iter().find(|c| c.trim().is_empty()) {
        return Err(format!("class name {c:?} is blank"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(c) = classes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("class {c:?} appears twice"));
    }
    Ok(())
}

impl ModelInfo {
    /// Reads the `mriscreen.*` metadata, lets `overrides` win, and fills the
    /// rest with defaults recorded in `assumed`. Graph-derived fields (names,
    /// layout, size) are set by the caller.
    pub(super) fn from_metadata(metadata: BTreeMap<String, String>, overrides: &Overrides) -> Result<Self, ModelError> {
        let ours = metadata.keys().any(|k| k.starts_with("mriscreen."));
        let meta = |key: &str| metadata.get(key).map(String::as_str);
        let mut assumed = Vec::new();

        let classes = match (&overrides.classes, meta(keys::CLASSES)) {
            (Some(c), _) => c.clone(),
            (None, Some(v)) => parse_class_list(keys::CLASSES, v)?,
            (None, None) => return Err(ModelError::MissingClasses),
        };
        check_classes(&classes).map_err(|e| match &overrides.classes {
            Some(c) => ModelError::Override { setting: "classes", value: c.join(","), expected: e },
            None => invalid(keys::CLASSES, meta(keys::CLASSES).unwrap_or_default(), &e),
        })?;

        let mut triple = |key: &str, given: Option<[f32; 3]>, default: f32| -> Result<[f32; 3], ModelError> {
            match (given, meta(key)) {
                (Some(v), _) => Ok(v),
                (None, Some(v)) => parse_triple_json(key, v),
                (None, None) => {
                    assumed.push(format!("{key} absent: using {default} for every channel"));
                    Ok([default; 3])
                }
            }
        };
        let mean = triple(keys::MEAN, overrides.mean, 0.0)?;
        let std = triple(keys::STD, overrides.std, 1.0)?;
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite()) {
            let value = format!("mean {mean:?}, std {std:?}");
            return Err(ModelError::Override { setting: "mean/std", value, expected: "finite numbers, std above 0".into() });
        }

        let resize = match (overrides.resize, meta(keys::RESIZE)) {
            (Some(r), _) => r,
            (None, Some("letterbox")) => Resize::Letterbox,
            (None, Some("stretch")) => Resize::Stretch,
            (None, Some(v)) => return Err(invalid(keys::RESIZE, v, "expected letterbox or stretch")),
            (None, None) => {
                assumed.push(format!("{} absent: letterboxing (aspect ratio kept)", keys::RESIZE));
                Resize::Letterbox
            }
        };
        let intensity = match (overrides.intensity, meta(keys::INTENSITY)) {
            (Some(i), _) => i,
            (None, Some("robust")) => Intensity::Robust,
            (None, Some("unit")) => Intensity::Unit,
            (None, Some(v)) => return Err(invalid(keys::INTENSITY, v, "expected robust or unit")),
            (None, None) if ours => Intensity::Robust,
            (None, None) => {
                assumed.push("no mriscreen metadata: pixel values scaled to [0, 1] by their type's maximum".into());
                Intensity::Unit
            }
        };
        let declared_size = match (overrides.input_size, meta(keys::INPUT_SIZE)) {
            (Some(s), _) => Some(s),
            (None, Some(v)) => Some(
                parse_size_metadata(v).ok_or_else(|| invalid(keys::INPUT_SIZE, v, "expected [width, height] in pixels, e.g. [224, 224]"))?,
            ),
            (None, None) => None,
        };
        let precision = match meta(keys::PRECISION) {
            Some(v) => v.parse().map_err(|e: String| invalid(keys::PRECISION, v, &e))?,
            None => Precision::Fp32,
        };
        let temperature = match meta(keys::TEMPERATURE) {
            Some(v) => match v.trim().parse::<f32>() {
                Ok(t) if t.is_finite() && t > 0.0 => t,
                _ => return Err(invalid(keys::TEMPERATURE, v, "expected a positive number")),
            },
            None => 1.0,
        };
        let refer_threshold = match meta(keys::REFER_THRESHOLD) {
            Some(v) => match v.trim().parse::<f32>() {
                Ok(t) if (0.0..=1.0).contains(&t) => Some(t),
                _ => return Err(invalid(keys::REFER_THRESHOLD, v, "expected a probability from 0 to 1; calibrate the model again or remove the key")),
            },
            None => None,
        };
        let parent_sha256 = match meta(keys::PARENT_SHA256) {
            Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => Some(v.to_ascii_lowercase()),
            Some(v) => return Err(invalid(keys::PARENT_SHA256, v, "expected 64 hexadecimal digits (the fp32 model's SHA-256)")),
            None => None,
        };
        let quantization = match meta(keys::QUANTIZATION) {
            Some(v) if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(v).is_ok() => Some(v.to_string()),
            Some(v) => return Err(invalid(keys::QUANTIZATION, v, "expected a JSON object, e.g. {\"method\":\"ptq\",\"bits\":8}")),
            None => None,
        };
        Ok(ModelInfo {
            classes,
            input: InputSpec { mean, std, resize, intensity, ..InputSpec::default() },
            arch: meta(keys::ARCH).map(str::to_string),
            precision,
            temperature,
            refer_threshold,
            trained_on: meta(keys::TRAINED_ON).map(str::to_string),
            parent_sha256,
            quantization,
            input_name: String::new(),
            logits_name: String::new(),
            features_name: None,
            sha256: String::new(),
            bytes: 0,
            assumed,
            declared_size,
            metadata,
        })
    }

    /// Checks that the logits width equals the class count.
    pub fn check_output_width(&self, name: &str, width: usize) -> Result<(), ModelError> {
        if width == self.classes.len() {
            return Ok(());
        }
        Err(ModelError::ClassCount {
            name: name.into(),
            outputs: width,
            classes: self.classes.len(),
            list: self.classes.join(", "),
        })
    }

    /// What the file says about the model (with the user's overrides and the
    /// defaults applied), ready to be written back, e.g. by `calibrate`.
    pub fn description(&self) -> Description {
        Description {
            classes: self.classes.clone(),
            input: self.input.clone(),
            arch: self.arch.clone(),
            precision: self.precision,
            temperature: self.temperature,
            refer_threshold: self.refer_threshold,
            trained_on: self.trained_on.clone(),
            familiarity: self.metadata.get(keys::FAMILIARITY).cloned(),
            parent_sha256: self.parent_sha256.clone(),
            quantization: self.quantization.clone(),
        }
    }

    /// The confidence threshold the referral rule holds this model to.
    pub fn threshold(&self) -> crate::referral::Threshold {
        crate::referral::Threshold::of(self.refer_threshold)
    }

    /// True for the randomly initialised placeholder that ships until a
    /// trained model exists.
    pub fn is_untrained(&self) -> bool {
        self.trained_on.as_deref().is_some_and(|t| t.starts_with("nothing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("224"), Some((224, 224)));
        assert_eq!(parse_size("256x192"), Some((256, 192)));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("abc"), None);
        assert_eq!(parse_size("100000"), None);
    }

    #[test]
    fn triples_parse() {
        assert_eq!(parse_triple("0.5"), Some([0.5; 3]));
        assert_eq!(parse_triple("1, 2,3"), Some([1.0, 2.0, 3.0]));
        assert_eq!(parse_triple("1,2"), None);
    }

    #[test]
    fn mriscreen_metadata_is_read() {
        let m = meta(&[
            (keys::CLASSES, r#"["a","b"]"#),
            (keys::MEAN, "[0.5]"),
            (keys::STD, "[0.25, 0.5, 1]"),
            (keys::RESIZE, "stretch"),
            (keys::PRECISION, "fp16"),
            (keys::TEMPERATURE, "1.5"),
            (keys::INPUT_SIZE, "128"),
        ]);
        let info = ModelInfo::from_metadata(m, &Overrides::default()).unwrap();
        assert_eq!(info.classes, vec!["a", "b"]);
        assert_eq!(info.input.mean, [0.5; 3]);
        assert_eq!(info.input.std, [0.25, 0.5, 1.0]);
        assert_eq!(info.input.resize, Resize::Stretch);
        assert_eq!(info.input.intensity, Intensity::Robust);
        assert_eq!(info.precision, Precision::Fp16);
        assert_eq!(info.temperature, 1.5);
        assert_eq!(info.declared_size, Some((128, 128)));
        assert!(info.assumed.is_empty(), "{:?}", info.assumed);
    }

    #[test]
    fn what_is_written_reads_back_the_same_for_every_key() {
        let input = InputSpec {
            width: 256,
            height: 192,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            resize: Resize::Stretch,
            intensity: Intensity::Unit,
            ..InputSpec::default()
        };
        let written = Description {
            classes: vec!["glioma".into(), "no tumour, \"quoted\"".into()],
            input,
            arch: Some("mobilenet_v2_1.0".into()),
            precision: Precision::Int8,
            temperature: 0.495_420_7,
            refer_threshold: Some(0.333_251_2),
            trained_on: Some("real MRI (a, b)".into()),
            familiarity: Some(r#"{"limit":0.2}"#.into()),
            parent_sha256: Some("ab".repeat(32)),
            quantization: Some(r#"{"method":"ptq","bits":8}"#.into()),
        };
        let entries = written.entries();
        let all = [
            keys::CLASSES, keys::INPUT_SIZE, keys::MEAN, keys::STD, keys::RESIZE, keys::INTENSITY,
            keys::ARCH, keys::PRECISION, keys::TEMPERATURE, keys::REFER_THRESHOLD, keys::TRAINED_ON, keys::FAMILIARITY,
            keys::PARENT_SHA256, keys::QUANTIZATION,
        ];
        assert_eq!(entries.iter().map(|(k, _)| *k).collect::<std::collections::BTreeSet<_>>(), all.into_iter().collect());
        let m: BTreeMap<String, String> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(m[keys::INPUT_SIZE], "[256, 192]");
        let info = ModelInfo::from_metadata(m, &Overrides::default()).unwrap();
        assert!(info.assumed.is_empty(), "{:?}", info.assumed);
        assert_eq!(info.declared_size, Some((256, 192)));
        let mut read = info.description();
        // The size reaches `input` once the graph is consulted (ModelPackage::read).
        (read.input.width, read.input.height) = (256, 192);
        assert_eq!(read, written);
        // Without the optional keys, too.
        let bare = Description::new(vec!["a".into()], InputSpec { width: 8, height: 8, ..InputSpec::default() });
        let m = bare.entries().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut read = ModelInfo::from_metadata(m, &Overrides::default()).unwrap().description();
        (read.input.width, read.input.height) = (8, 8);
        assert_eq!(read, bare);
    }

    #[test]
    fn sizes_and_channel_values_are_read_in_json_and_plain_forms() {
        for (v, want) in [("[224, 224]", (224, 224)), ("[256,192]", (256, 192)), ("[96]", (96, 96)), ("224", (224, 224)), ("256x192", (256, 192))] {
            let m = meta(&[(keys::CLASSES, r#"["a"]"#), (keys::INPUT_SIZE, v)]);
            assert_eq!(ModelInfo::from_metadata(m, &Overrides::default()).unwrap().declared_size, Some(want), "{v}");
        }
        for v in ["[0, 224]", "[1, 2, 3]", "[]", "[-1, 2]", "\"224\""] {
            let m = meta(&[(keys::CLASSES, r#"["a"]"#), (keys::INPUT_SIZE, v)]);
            let err = ModelInfo::from_metadata(m, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(keys::INPUT_SIZE), "{v}: {err}");
        }
        let m = meta(&[(keys::CLASSES, r#"["a"]"#), (keys::MEAN, "0.5, 0.25, 0"), (keys::STD, "0.5")]);
        let info = ModelInfo::from_metadata(m, &Overrides::default()).unwrap();
        assert_eq!((info.input.mean, info.input.std), ([0.5, 0.25, 0.0], [0.5; 3]));
    }

    #[test]
    fn third_party_defaults_are_recorded() {
        let o = Overrides { classes: Some(vec!["x".into(), "y".into()]), ..Default::default() };
        let info = ModelInfo::from_metadata(BTreeMap::new(), &o).unwrap();
        assert_eq!(info.input.intensity, Intensity::Unit);
        assert_eq!(info.assumed.len(), 4, "{:?}", info.assumed);
    }

    #[test]
    fn bad_metadata_names_the_key() {
        for (k, v) in [
            (keys::CLASSES, "not json"),
            (keys::TEMPERATURE, "-1"),
            (keys::REFER_THRESHOLD, "high"),
            (keys::REFER_THRESHOLD, "1.5"),
            (keys::PRECISION, "fp8"),
            (keys::RESIZE, "crop"),
            (keys::MEAN, "[1,2]"),
            (keys::PARENT_SHA256, "abc"),
            (keys::QUANTIZATION, "int8"),
        ] {
            let mut m = meta(&[(keys::CLASSES, r#"["a"]"#)]);
            m.insert(k.into(), v.into());
            let err = ModelInfo::from_metadata(m, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(k), "{err}");
        }
    }

    #[test]
    fn duplicate_or_blank_classes_are_refused() {
        for c in [vec!["a", "a"], vec!["a", " "], vec![]] {
            let o = Overrides { classes: Some(c.iter().map(|s| s.to_string()).collect()), ..Default::default() };
            assert!(ModelInfo::from_metadata(BTreeMap::new(), &o).is_err());
        }
    }
}
