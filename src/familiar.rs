//! Is this input like the images the model was trained on? The model answers
//! anything, confidently or not, so the "refer" threshold on its confidence
//! cannot tell a brain MRI from a photo. This check looks at the model's own
//! `features` output instead: the feature map is averaged to one vector, and
//! its cosine distance to the nearest class centre of the training images
//! (1 − cosine similarity: 0 when it points the same way) is compared with a
//! limit chosen on the validation split (`mriscreen calibrate`). Above the
//! limit the result is flagged "unlike the training images — refer for
//! expert review".
//!
//! Why cosine: on the default model's features, it separated the test split
//! from nine non-MRI images (grey and colour photos, a page of text, a
//! synthetic ramp) completely, where a per-feature standardised (diagonal
//! Mahalanobis) distance flagged only four of them at the same 1 % false
//! alarm rate (README, "Familiarity").
//!
//! The statistics travel in the model's metadata (`mriscreen.familiarity`,
//! JSON), so the page and the CLI check with the numbers the trainer fitted.
//! The class means are fitted at float16 precision and stored as base64 of
//! their little-endian float16 bytes (`means_f16`, one string per class):
//! 4 × 1280 means take 14 KB instead of 41 KB as decimal JSON, which matters
//! in a 1.3 MB int4 model. The older decimal form (`means`) is still read.

use crate::backend::FeatureMap;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The metadata value as JSON: class means in one of two encodings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    means: Option<Vec<Vec<f32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    means_f16: Option<Vec<String>>,
    limit: f32,
    #[serde(default)]
    rule: String,
}

fn to_f16_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn from_f16_base64(s: &str) -> Result<Vec<f32>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("a class mean is not base64 ({e})"))?;
    if bytes.len() % 2 != 0 {
        return Err("a class mean has an odd number of bytes for float16 values".into());
    }
    Ok(bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect())
}

/// The fitted statistics and the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Familiarity {
    /// Per class (in output order), the mean pooled feature vector.
    pub means: Vec<Vec<f32>>,
    /// Distances above this are "unlike the training images".
    pub limit: f32,
    /// How the limit was chosen, for people (e.g. "99th percentile of 360 validation images").
    pub rule: String,
}

impl Familiarity {
    /// Class means of pooled `features` with their `labels` (class indices
    /// below `classes`), rounded to float16 as they are stored; the limit is
    /// set later ([`Self::with_limit`]). None
    /// when a class has no example or the vectors are empty or of unequal length.
    pub fn fit(features: &[Vec<f32>], labels: &[u32], classes: usize) -> Option<Self> {
        let k = features.first()?.len();
        if k == 0 || features.len() != labels.len() || features.iter().any(|f| f.len() != k) {
            return None;
        }
        let mut sums = vec![vec![0f64; k]; classes];
        let mut counts = vec![0usize; classes];
        for (f, &y) in features.iter().zip(labels) {
            let y = y as usize;
            if y >= classes {
                return None;
            }
            counts[y] += 1;
            sums[y].iter_mut().zip(f).for_each(|(s, &v)| *s += f64::from(v));
        }
        if counts.contains(&0) {
            return None;
        }
        let half = |v: f64| half::f16::from_f64(v).to_f32();
        let means = sums.iter().zip(&counts).map(|(s, &n)| s.iter().map(|v| half(v / n as f64)).collect()).collect();
        Some(Familiarity { means, limit: f32::INFINITY, rule: String::new() })
    }

    /// Sets the limit to the `quantile` (0–1) of `distances` (of held-out
    /// images like the training data), and records the rule.
    pub fn with_limit(mut self, distances: &[f32], quantile: f64) -> Self {
        self.limit = crate::preprocess::percentile(distances, quantile * 100.0);
        self.rule = format!("{:.0}th percentile of the distances of {} validation images", quantile * 100.0, distances.len());
        self
    }

    /// The cosine distance (0–2) of pooled features `f` to the nearest class
    /// centre; 1 for an all-zero vector, infinite for the wrong length.
    pub fn distance(&self, f: &[f32]) -> f32 {
        if self.means.first().is_none_or(|m| m.len() != f.len()) {
            return f32::INFINITY;
        }
        let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let nf = norm(f);
        self.means
            .iter()
            .map(|m| {
                let denom = nf * norm(m);
                let dot: f64 = f.iter().zip(m).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                (if denom > 0.0 { 1.0 - dot / denom } else { 1.0 }) as f32
            })
            .fold(f32::INFINITY, f32::min)
    }

    /// Parses the metadata value; `Err` says what is wrong.
    pub fn from_json(s: &str, classes: usize) -> Result<Self, String> {
        let stored: Stored = serde_json::from_str(s).map_err(|e| format!("not the expected JSON ({e})"))?;
        let means = match (stored.means, stored.means_f16) {
            (Some(m), None) => m,
            (None, Some(m)) => m.iter().map(|c| from_f16_base64(c)).collect::<Result<_, _>>()?,
            _ => return Err("expected class means in exactly one of `means` and `means_f16`".into()),
        };
        let f = Familiarity { means, limit: stored.limit, rule: stored.rule };
        if f.means.len() != classes {
            return Err(format!("{} class means for {classes} classes", f.means.len()));
        }
        let k = f.means[0].len();
        if k == 0 || f.means.iter().any(|m| m.len() != k) {
            return Err("class means of different lengths".into());
        }
        if !f.limit.is_finite() || f.limit <= 0.0 || !f.means.iter().flatten().all(|v| v.is_finite()) {
            return Err("a limit or mean that is not a positive finite number".into());
        }
        Ok(f)
    }

    /// The metadata value: JSON with the means as base64 float16 (module docs).
    pub fn to_json(&self) -> String {
        let stored = Stored {
            means: None,
            means_f16: Some(self.means.iter().map(|m| to_f16_base64(m)).collect()),
            limit: self.limit,
            rule: self.rule.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }
}

/// The feature map averaged over its positions: one value per channel.
pub fn pool(map: &FeatureMap) -> Vec<f32> {
    let hw = map.height * map.width;
    if hw == 0 {
        return vec![0.0; map.channels];
    }
    map.data.chunks_exact(hw).take(map.channels).map(|c| (c.iter().map(|&v| f64::from(v)).sum::<f64>() / hw as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted() -> Familiarity {
        // Two classes in 2-D: class 0 around (1, 0), class 1 around (0, 2).
        let features = vec![vec![1.0, 0.5], vec![1.0, -0.5], vec![0.5, 2.0], vec![-0.5, 2.0]];
        Familiarity::fit(&features, &[0, 0, 1, 1], 2).unwrap()
    }

    #[test]
    fn fit_gives_class_means() {
        assert_eq!(fitted().means, vec![vec![1.0, 0.0], vec![0.0, 2.0]]);
    }

    #[test]
    fn distance_is_the_cosine_distance_to_the_nearest_class() {
        let f = fitted();
        // Same direction as a class centre, whatever the length: 0.
        assert!(f.distance(&[3.0, 0.0]).abs() < 1e-6);
        assert!(f.distance(&[0.0, 0.1]).abs() < 1e-6);
        // 45° from both: 1 − cos 45°.
        let d = f.distance(&[1.0, 1.0]);
        assert!((d - (1.0 - 0.5f32.sqrt())).abs() < 1e-6, "{d}");
        // Opposite to class 0 and orthogonal to class 1: 1.
        assert!((f.distance(&[-1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(f.distance(&[0.0, 0.0]), 1.0, "no features at all");
        assert_eq!(f.distance(&[1.0]), f32::INFINITY, "wrong length");
    }

    #[test]
    fn limit_is_a_quantile_and_json_round_trips() {
        let distances: Vec<f32> = (1..=100).map(|i| i as f32 / 100.0).collect();
        let f = fitted().with_limit(&distances, 0.99);
        assert!((f.limit - 0.9901).abs() < 1e-4, "{}", f.limit);
        assert!(f.rule.contains("99th percentile") && f.rule.contains("100 validation images"));
        let back = Familiarity::from_json(&f.to_json(), 2).unwrap();
        assert_eq!(back.means, f.means);
        assert_eq!(back.limit, f.limit);
        // The older decimal form is still read.
        let old = r#"{"means":[[1.0,0.0],[0.0,2.0]],"limit":0.5,"rule":"r"}"#;
        assert_eq!(Familiarity::from_json(old, 2).unwrap().means, f.means);
        // Means are fitted at float16 precision, so storing them loses nothing.
        let odd = Familiarity::fit(&[vec![0.1f32, 1.0 / 3.0]], &[0], 1).unwrap();
        assert_eq!(Familiarity::from_json(&odd.clone().with_limit(&[0.1], 0.5).to_json(), 1).unwrap().means, odd.means);
        assert_eq!(odd.means[0][1], half::f16::from_f64(1.0 / 3.0).to_f32());
    }

    #[test]
    fn bad_statistics_are_refused() {
        let good = fitted().with_limit(&[0.1, 0.2], 0.99).to_json();
        assert!(Familiarity::from_json(&good, 3).unwrap_err().contains("2 class means for 3 classes"));
        assert!(Familiarity::from_json("{", 2).is_err());
        assert!(Familiarity::from_json(&good.replace("\"limit\":", "\"extra\":1,\"limit\":"), 2).is_err());
        assert!(Familiarity::from_json(r#"{"means_f16":["@@"],"limit":0.5}"#, 1).unwrap_err().contains("base64"));
        assert!(Familiarity::from_json(r#"{"means_f16":["AA=="],"limit":0.5}"#, 1).unwrap_err().contains("odd number"));
        assert!(Familiarity::from_json(r#"{"limit":0.5}"#, 1).unwrap_err().contains("exactly one"));
        let mut f = fitted();
        f.limit = 0.0;
        assert!(Familiarity::from_json(&f.to_json(), 2).unwrap_err().contains("positive finite"));
        f.limit = 0.5;
        f.means[1].pop();
        assert!(Familiarity::from_json(&f.to_json(), 2).unwrap_err().contains("different lengths"));
        assert!(Familiarity::fit(&[vec![1.0]], &[0], 2).is_none(), "a class without examples");
        assert!(Familiarity::fit(&[vec![1.0], vec![1.0, 2.0]], &[0, 1], 2).is_none(), "unequal lengths");
    }

    #[test]
    fn pooling_averages_each_channel() {
        let map = FeatureMap { channels: 2, height: 1, width: 2, data: vec![1.0, 3.0, -2.0, 2.0] };
        assert_eq!(pool(&map), vec![2.0, 0.0]);
    }
}
