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
