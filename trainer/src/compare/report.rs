//! `compare.md`: the comparison as tables a reader can check by eye.

use super::Comparison;

fn pct(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn ci(c: [f64; 2]) -> String {
    format!("{:.1}–{:.1} %", 100.0 * c[0], 100.0 * c[1])
}

fn mb(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn p_value(p: f64) -> String {
    if p < 1e-4 { format!("{p:.1e}") } else { format!("{p:.3}") }
}

/// The Markdown report.
pub fn markdown(c: &Comparison) -> String {
    let mut s = format!(
        "# Compressed variants against their parent\n\n> {}\n\nData: {} — test split n = {}{}, validation n = {}. \
         Every model runs as the page runs it (same decoding, preprocessing and tract CPU backend). \
         Intervals: Wilson 95 % for accuracies; paired bootstrap 95 % ({} resamples, seed {}) for differences; \
         McNemar: exact two-sided binomial test on the discordant images (b = only the parent right, c = only the variant right).\n\n",
        c.disclaimer,
        c.data,
        c.test_n,
        c.deduplicated_n.map_or(String::new(), |n| format!(" (deduplicated subset n = {n})")),
        c.val_n,
        c.bootstrap_resamples,
        c.seed
    );
    s += "| model | precision | bytes (of parent) | gzip -9 | test accuracy (95 % CI) | macro-F1 | validation accuracy | agreement | McNemar b / c, p | Δ accuracy (95 % CI) | tract latency |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for m in &c.models {
        let (agree, mcn, diff) = match &m.vs_parent {
            Some(v) => (
                pct(v.agreement),
                format!("{} / {}, p = {}", v.test.mcnemar.only_reference_right, v.test.mcnemar.only_model_right, p_value(v.test.mcnemar.p)),
                format!("{:+.1} ({:+.1} to {:+.1}) pts", 100.0 * v.test.difference.accuracy_difference, 100.0 * v.test.difference.ci95[0], 100.0 * v.test.difference.ci95[1]),
            ),
            None => ("—".into(), "parent".into(), "—".into()),
        };
        s += &format!(
            "| {} | {} | {} ({}) | {} | {} ({}) | {:.3} | {} | {} | {} | {} | {:.1} ms |\n",
            m.name,
            m.precision,
            mb(m.bytes),
            pct(m.bytes_ratio),
            mb(m.gzip_bytes),
            pct(m.test.accuracy),
            ci(m.test.accuracy_ci95),
            m.test.macro_f1,
            m.val_accuracy.map_or("—".into(), pct),
            agree,
            mcn,
            diff,
            m.latency_ms_median
        );
    }
    if c.deduplicated_n.is_some() {
        s += "\n## Deduplicated test subset (test images with no near copy in training)\n\n| model | accuracy (95 % CI) | McNemar b / c, p | Δ accuracy (95 % CI) |\n|---|---|---|---|\n";
        for m in &c.models {
            let Some(d) = &m.test.deduplicated else { continue };
            let (mcn, diff) = match m.vs_parent.as_ref().and_then(|v| v.deduplicated.as_ref()) {
                Some(p) => (
                    format!("{} / {}, p = {}", p.mcnemar.only_reference_right, p.mcnemar.only_model_right, p_value(p.mcnemar.p)),
                    format!("{:+.1} ({:+.1} to {:+.1}) pts", 100.0 * p.difference.accuracy_difference, 100.0 * p.difference.ci95[0], 100.0 * p.difference.ci95[1]),
                ),
                None => ("parent".into(), "—".into()),
            };
            s += &format!("| {} | {} ({}, n = {}) | {} | {} |\n", m.name, pct(d.accuracy), ci(d.accuracy_ci95), d.n, mcn, diff);
        }
    }
    s += "\n## Calibration and per-class recall (test split)\n\n| model | temperature | NLL raw → calibrated | ECE (15 bins) raw → calibrated | max Δp vs parent (T = 1) |";
    let classes = c.models.first().map(|m| m.test.classes.clone()).unwrap_or_default();
    for k in &classes {
        s += &format!(" recall {k} |");
    }
    s += "\n|---|---|---|---|---|";
    s += &"---|".repeat(classes.len());
    s += "\n";
    for m in &c.models {
        s += &format!(
            "| {} | {:.3} | {:.3} → {:.3} | {:.3} → {:.3} | {} |",
            m.name,
            m.temperature,
            m.nll,
            m.nll_calibrated,
            m.ece,
            m.ece_calibrated,
            m.vs_parent.as_ref().map_or("—".into(), |v| format!("{:.4}", v.max_abs_probability_change))
        );
        for pc in &m.test.per_class {
            s += &format!(" {} |", pct(pc.recall));
        }
        s += "\n";
    }
    s += &format!("\n**Choice rule:** {}. ", c.choice_rule);
    s += &match &c.chosen {
        Some(name) => format!("Chosen: **{name}**.\n"),
        None => "No model has validation results, so none is chosen.\n".into(),
    };
    s += "\nPlots: `accuracy-vs-bytes.svg`, `reliability.svg`, `confusion.svg`.\n";
    s
}
