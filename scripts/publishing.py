"""Number formats shared by the publish scripts (model cards and manifest text)."""


def pct(x):
    """0.9748 -> '97.5 %'."""
    return f"{100 * x:.1f} %"


def ci(lo_hi):
    """[0.96, 0.98] -> '96.0–98.0 %'."""
    return f"{100 * lo_hi[0]:.1f}–{100 * lo_hi[1]:.1f} %"


def p_value(p):
    """Three decimals, or scientific below 1e-4."""
    return f"{p:.1e}" if p < 1e-4 else f"{p:.3f}"


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
