"""Number formats shared by the publish scripts (model cards and manifest text)."""


def pct(x):
    """0.9748 -> '97.5 %'."""
    return f"{100 * x:.1f} %"


def ci(lo_hi):
    """[0.96, 0.98] -> '96.0–98.0 %'."""
    return f"{100 * lo_hi[0]:.1f}–{100 * lo_hi[1]:.1f} %"


def p_value(p):
    """Three decimals, or scientific below 1e-3 (where three decimals would print 0.000)."""
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def external_test(ext):
    """The manifest's `external_test` from `mriscreen evaluate --external` JSON, or None."""
    if not ext or not ext.get("binary"):
        return None
    b = ext["binary"]
    return {k: b[k] for k in ("sensitivity", "sensitivity_ci95", "positives", "specificity", "specificity_ci95", "negatives")}


def refer_rule(cal):
    """How the refer threshold was chosen, in words, from calibration.json. The threshold
    itself lives in the model file (mriscreen.refer_threshold), where the library reads it."""
    return (f"the model's refer threshold was chosen on the validation split (n = {cal['n']}) as the "
            f"lowest top calibrated probability at which accepted images were "
            f"{100 * cal['target_accuracy']:.0f} % right")


def per_class_table(test):
    """The card's per-class table from an evaluation's `per_class`."""
    text = "## Per-class results on the test split\n\n| class | precision | recall | F1 | images |\n|---|---|---|---|---|\n"
    for c in test["per_class"]:
        text += f"| {c['class']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |\n"
    return text


def vs_parent_entry(m):
    """The manifest's `vs_parent` from a `compare` model row."""
    v = m["vs_parent"]
    return {
        "agreement": v["agreement"],
        "mcnemar_p": v["test"]["mcnemar"]["p"],
        "only_parent_right": v["test"]["mcnemar"]["only_reference_right"],
        "only_variant_right": v["test"]["mcnemar"]["only_model_right"],
        "accuracy_difference": v["test"]["accuracy_difference"],
        "accuracy_difference_ci95": v["test"]["ci95"],
    }
