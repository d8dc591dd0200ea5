"""Small statistics shared by the analyses: means with t-intervals and paired one-sided tests."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its t-interval (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, np.zeros_like(mean)
    sem = values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, sem * stats.t.ppf(0.5 + level / 2, n - 1)


def _wilcoxon(d: np.ndarray, alternative: str) -> float:
    """Wilcoxon signed-rank p-value of paired differences d (1.0 when every difference is 0,
    where the test is undefined)."""
    if d.size == 0 or np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, alternative=alternative, zero_method="wilcox").pvalue)


def paired_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p-value for a > b on paired values."""
    return _wilcoxon(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), "greater")


def two_sample(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value (None when a group is empty)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return None
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def two_sided_paired(a, b) -> dict:
    """Paired comparison of a and b: mean difference and a two-sided Wilcoxon signed-rank p."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return {"n": 0}
    p = _wilcoxon(d, "two-sided")
    return {"n": int(d.size), "mean_difference": float(d.mean()), "p_value": p}


def holm(p_values) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None entries, untested members,
    stay None and do not count): controls the family-wise error rate, so a layer is declared
    only if its test survives the test of every layer (Holm 1979)."""
    tested = [(p, i) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(tested)):
        running = max(running, min(1.0, (len(tested) - rank) * float(p)))
        out[i] = running
    return out


def greater_than_zero(values) -> float:
    """One-sided Wilcoxon signed-rank p-value for values > 0 (1.0 when all are 0)."""
    return _wilcoxon(np.asarray(values, dtype=float), "greater")
