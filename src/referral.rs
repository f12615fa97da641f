//! The one "refer for expert review" rule. [`Classifier`](crate::Classifier)
//! applies it to every prediction ([`Prediction::refer`](crate::Prediction)
//! and `refer_reasons`); the CLI, its JSON, the page and its exports only
//! display the decision.
//!
//! A result is referred for each of these reasons that holds:
//! - **low confidence**: the top (temperature-scaled) probability is below
//!   the model's `mriscreen.refer_threshold`, chosen on the validation split
//!   by `mriscreen calibrate`. A model without one is held to
//!   [`DEFAULT_THRESHOLD`], and the reason says the threshold is not
//!   calibrated, because such a model's confidence has not been measured.
//! - **colour**: the image is in colour ([`input_check`](crate::input_check)):
//!   MRI slices are grey, so it is likely not a scan.
//! - **unfamiliar**: the image's features are farther from the training
//!   images' than the model's `mriscreen.familiarity` limit
//!   ([`familiar`](crate::familiar)); only for a model that carries them.

use crate::input_check;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The threshold for a model that has no calibrated `mriscreen.refer_threshold`:
/// a top probability below 90 % is referred. Not validated for any model; a
/// conservative default for a model whose confidence nobody has measured.
pub const DEFAULT_THRESHOLD: f32 = 0.9;

/// The confidence threshold a model is held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f32,
    /// `true` when it is the model's own calibrated threshold, `false` for
    /// [`DEFAULT_THRESHOLD`].
    pub calibrated: bool,
}

impl Threshold {
    /// The model's calibrated threshold, or the default when it has none.
    pub fn of(calibrated: Option<f32>) -> Self {
        match calibrated {
            Some(value) => Threshold { value, calibrated: true },
            None => Threshold { value: DEFAULT_THRESHOLD, calibrated: false },
        }
    }
}

/// Why a result is referred, with the numbers that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReferReason {
    /// The top probability is below the threshold.
    LowConfidence { top_probability: f32, threshold: f32, calibrated: bool },
    /// A colour image: `fraction` of its pixels are in colour.
    Colour { fraction: f32 },
    /// Features farther from the training images' than the model's limit.
    Unfamiliar { distance: f32, limit: f32 },
}

impl fmt::Display for ReferReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReferReason::LowConfidence { top_probability, threshold, calibrated } => write!(
                f,
                "unsure: top probability {top_probability:.3} is below {threshold:.3}{}",
                if calibrated { "" } else { " (a default threshold: the model has no calibrated one)" }
            ),
            ReferReason::Colour { fraction } => write!(
                f,
                "colour image ({:.0} % of pixels): MRI slices are grey, this may not be a scan",
                fraction * 100.0
            ),
            ReferReason::Unfamiliar { distance, limit } => {
                write!(f, "unlike the training images: feature distance {distance:.2} is above the model's limit {limit:.2}")
            }
        }
    }
}

/// What the rule looks at for one image.
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    pub top_probability: f32,
    pub colour_fraction: f32,
    /// (distance, limit), for a model with familiarity statistics.
    pub familiarity: Option<(f32, f32)>,
}

/// Every reason to refer (empty: not referred), in the order colour,
/// unfamiliar, low confidence: what says most about the input comes first.
pub fn reasons(evidence: &Evidence, threshold: Threshold) -> Vec<ReferReason> {
    let mut out = Vec::new();
    if input_check::is_colour(evidence.colour_fraction) {
        out.push(ReferReason::Colour { fraction: evidence.colour_fraction });
    }
    if let Some((distance, limit)) = evidence.familiarity.filter(|(d, l)| d > l) {
        out.push(ReferReason::Unfamiliar { distance, limit });
    }
    if evidence.top_probability < threshold.value {
        out.push(ReferReason::LowConfidence {
            top_probability: evidence.top_probability,
            threshold: threshold.value,
            calibrated: threshold.calibrated,
        });
    }
    out
}

/// The rule in one sentence for this model, as `predict` and the page state it.
pub fn describe(threshold: Threshold, has_familiarity: bool) -> String {
    let mut when = vec![if threshold.calibrated {
        format!("the top probability is below {:.3} (the model's calibrated threshold)", threshold.value)
    } else {
        format!(
            "the top probability is below {:.3} (a default: the model has no calibrated threshold, so its confidence is unmeasured)",
            threshold.value
        )
    }];
    if has_familiarity {
        when.push("the image is unlike the training images (the model's feature statistics)".into());
    }
    when.push("the image is in colour".into());
    format!("refer for expert review when {}", when.join(", or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(top: f32, colour: f32, familiarity: Option<(f32, f32)>) -> Evidence {
        Evidence { top_probability: top, colour_fraction: colour, familiarity }
    }

    #[test]
    fn a_confident_grey_familiar_image_is_not_referred() {
        let t = Threshold::of(Some(0.6));
        assert!(reasons(&evidence(0.61, 0.0, Some((0.1, 0.2))), t).is_empty());
        // Exactly at the threshold or the limit is not beyond it.
        assert!(reasons(&evidence(0.6, 0.0, Some((0.2, 0.2))), t).is_empty());
    }

    #[test]
    fn every_reason_that_holds_is_given_with_its_numbers() {
        let r = reasons(&evidence(0.5, 0.3, Some((0.9, 0.2))), Threshold::of(Some(0.6)));
        assert_eq!(
            r,
            vec![
                ReferReason::Colour { fraction: 0.3 },
                ReferReason::Unfamiliar { distance: 0.9, limit: 0.2 },
                ReferReason::LowConfidence { top_probability: 0.5, threshold: 0.6, calibrated: true },
            ]
        );
        assert!(r[0].to_string().contains("30 %"), "{}", r[0]);
        assert!(r[1].to_string().contains("0.90") && r[1].to_string().contains("0.20"), "{}", r[1]);
    }

    #[test]
    fn a_model_without_a_threshold_is_held_to_the_default() {
        let t = Threshold::of(None);
        assert_eq!(t, Threshold { value: DEFAULT_THRESHOLD, calibrated: false });
        let r = reasons(&evidence(0.85, 0.0, None), t);
        assert_eq!(r, vec![ReferReason::LowConfidence { top_probability: 0.85, threshold: 0.9, calibrated: false }]);
        assert!(r[0].to_string().contains("no calibrated"), "{}", r[0]);
        assert!(reasons(&evidence(0.95, 0.0, None), t).is_empty());
        assert!(describe(t, false).contains("a default"));
    }

    #[test]
    fn reasons_cross_to_javascript_tagged_by_kind() {
        let json = serde_json::to_value(ReferReason::Colour { fraction: 0.5 }).unwrap();
        assert_eq!(json, serde_json::json!({ "kind": "colour", "fraction": 0.5 }));
        let json = serde_json::to_value(ReferReason::LowConfidence { top_probability: 0.5, threshold: 0.9, calibrated: false }).unwrap();
        assert_eq!(json["kind"], "low_confidence");
    }
}
