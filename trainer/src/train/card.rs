//! The model card `train` writes beside the model: what it is, what it
//! learned from, how the split was made and what leaked, how well it did on
//! how many held-out images (all of them and the deduplicated subset), the
//! screening question, calibration, and what it must not be used for.

use super::{Args, State};
use crate::data::{Dataset, Split};
use crate::export::ExportInfo;

/// The stages a run trained, in words, leaving out skipped ones (a model
/// trained from scratch has no frozen backbone worth a head-only stage).
fn stages_run(epochs: &[usize], lr: &[f64], top: usize) -> String {
    let what = ["head only (backbone frozen)".to_string(), format!("top {top} blocks and head"), "all layers".to_string()];
    let run: Vec<String> = (0..3)
        .filter(|&i| epochs.get(i).is_some_and(|&e| e > 0))
        .map(|i| format!("stage {}, {}: {} epochs at peak learning rate {}", i + 1, what[i], epochs[i], lr.get(i).copied().unwrap_or(0.0)))
        .collect();
    let skipped: Vec<String> = (0..3).filter(|&i| epochs.get(i).is_none_or(|&e| e == 0)).map(|i| (i + 1).to_string()).collect();
    let mut text = run.join("; ");
    if !skipped.is_empty() {
        text += &format!(" (stage{} {} skipped)", if skipped.len() > 1 { "s" } else { "" }, skipped.join(" and "));
    }
    text
}

/// A short model card: what the model is, what it learned from, how well it
/// did on how many held-out images, and what it must not be used for.
pub fn model_card(
    a: &Args,
    ds: &Dataset,
    info: &ExportInfo,
    e: &crate::evaluate::Evaluation,
    state: &State,
    bytes: usize,
    calibration: Option<&crate::calibrate::Calibration>,
) -> String {
    let counts = |s: Split| ds.class_counts(s).iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" / ");
    let mut card = format!(
        "# Model card: {arch} ({precision}, {size}×{size})\n\n\
         **{disclaimer}**\n\n\
         - **Trained on:** {trained_on}.\n\
         - **Classes** (output order): {classes}.\n\
         - **Images per class** ({classes}): train {train}; validation {val}; test {test}.\n\
         - **Test accuracy:** {acc:.1} % (95 % Wilson CI {lo:.1}–{hi:.1} %, n = {n} held-out images), macro-F1 {f1:.3}.\n\
         - **Input:** grey luminance, 0.5–99.5 percentile window, letterboxed to {size}×{size}, replicated to 3 channels, (x − 0.5) / 0.5.\n\
         - **Training:** {stages}; batch {batch}, AdamW (weight decay {wd}), cosine schedule per stage, \
           label smoothing {ls}, augmentation {aug}, seed {seed}; best validation loss at stage/epoch {best:?}.\n\
         - **File:** {bytes} bytes, ONNX opset {opset}, outputs `logits` and `features` (for the heat-map).{qat}\n\n",
        arch = info.arch.name(),
        precision = info.precision,
        opset = match info.precision {
            mriscreen::model::Precision::Int8 => 19,
            mriscreen::model::Precision::Int4 => 21,
            _ => 13,
        },
        qat = match a.qat_scheme() {
            Some((p, s)) => format!(
                "\n- **Quantization-aware training:** {p}{block}, every layer with BatchNorm frozen and folded and the weights \
                 fake-quantized exactly as the file stores them (straight-through gradients), from {init}.",
                block = if s.block > 0 { format!(" in blocks of {}", s.block) } else { String::new() },
                init = a.init.as_ref().map_or("?".into(), |p| format!("`{}`", p.display()))
            ),
            None => String::new(),
        },
        size = a.size,
        disclaimer = mriscreen::DISCLAIMER,
        trained_on = info.trained_on,
        classes = ds.classes.join(", "),
        train = counts(Split::Train),
        val = counts(Split::Val),
        test = counts(Split::Test),
        acc = 100.0 * e.accuracy,
        lo = 100.0 * e.accuracy_ci95[0],
        hi = 100.0 * e.accuracy_ci95[1],
        n = e.n,
        f1 = e.macro_f1,
        stages = stages_run(&a.epochs, &a.lr, a.unfreeze_top),
        batch = a.batch,
        wd = a.weight_decay,
        ls = a.label_smoothing,
        aug = if a.no_augment { "off" } else { "on (rotation, scale, shift, flip, brightness/contrast/gamma, noise)" },
        seed = a.seed,
        best = state.best.unwrap_or((0, 0)),
    );
    card += &test_section(ds, e);
    card += &match calibration {
        Some(c) => c.card_section(),
        None => "## Calibration\n\nNot calibrated (too few validation images): temperature 1, no refer threshold.\n\n".into(),
    };
    card += "## Per-class results on the test split\n\n| class | precision | recall | F1 | images |\n|---|---|---|---|---|\n";
    for m in &e.per_class {
        card += &format!("| {} | {:.3} | {:.3} | {:.3} | {} |\n", m.class, m.precision, m.recall, m.f1, m.support);
    }
    card += "\n## Limits\n\nMeasured on held-out images of the same source it was trained on; \
             accuracy on other scanners, sequences, populations or real patients is unknown. \
             It is decision support for research, never a diagnosis.\n";
    card
}

/// The card's data and test details: manifest, leakage, the deduplicated
/// subset and the screening question.
fn test_section(ds: &Dataset, e: &crate::evaluate::Evaluation) -> String {
    let r = &ds.report;
    let mut s = String::from("## Data and test split\n\n");
    s += &format!("- **Split:** {}.\n", r.split_rule);
    if let Some(m) = &r.manifest {
        s += &format!("- **Files:** {} {}.\n", if m.matches { "match the committed manifests:" } else { "DIFFER from the manifests:" }, m.summary());
    }
    if let Some(tt) = r.leakage.pair(Split::Train, Split::Test) {
        s += &format!(
            "- **Leakage:** {} of {} test images have an exact or near copy (pHash ≤ {} bits) among the training images ({} exact pairs, {} near pairs).\n",
            tt.images_with_duplicate,
            e.n,
            r.leakage.near_threshold,
            tt.exact_pairs,
            tt.near_pairs
        );
    }
    if !r.label_conflicts.is_empty() {
        s += &format!("- **Label conflicts:** {} pairs of identical images under two labels, dropped from every split.\n", r.label_conflicts.len());
    }
    if let (Some(d), Some(rule)) = (&e.deduplicated, &e.subset_rule) {
        s += &format!("- **Deduplicated test subset** ({rule}): {}.\n", d.headline());
    }
    if let Some(b) = &e.binary {
        s += &format!("- **Screening** ({}).\n", b.line());
    }
    s + "\n"
}

#[cfg(test)]
mod tests {
    use super::stages_run;

    #[test]
    fn the_card_names_only_the_stages_that_ran() {
        assert_eq!(
            stages_run(&[0, 0, 40], &[0.003, 0.003, 0.003], 4),
            "stage 3, all layers: 40 epochs at peak learning rate 0.003 (stages 1 and 2 skipped)"
        );
        let all = stages_run(&[3, 4, 20], &[0.001, 0.0003, 0.0002], 4);
        assert!(all.starts_with("stage 1, head only (backbone frozen): 3 epochs at peak learning rate 0.001; stage 2, top 4 blocks and head: 4 epochs"), "{all}");
        assert!(!all.contains("skipped"), "{all}");
    }
}
