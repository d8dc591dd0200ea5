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


# Up to this many differences with ties or zeros, the signed-rank test is exact by enumerating
# every sign pattern (scipy's choice too: 2**13 patterns); above it, the normal approximation.
EXACT_TIED_MAX = 13


def _exact_tied(d: np.ndarray, alternative: str) -> float:
    """The exact signed-rank p-value of a small sample with ties or zeros: every one of the
    2**n sign patterns of the nonzero differences (zeros dropped, `zero_method="wilcox"`; tied
    magnitudes share their mean rank). The same p-value as scipy's `wilcoxon`, which reaches it
    through a generic permutation test that evaluates the statistic once per pattern in Python
    (0.1-0.4 s per call, most of a summary's time); here it is one matrix product."""
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    observed = ranks[nz > 0].sum()
    n = nz.size
    patterns = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    null = patterns @ ranks  # r_plus of every sign pattern; ranks are multiples of 1/2: exact
    greater = float(np.mean(null >= observed))
    less = float(np.mean(null <= observed))
    if alternative == "greater":
        return greater
    if alternative == "less":
        return less
    return min(1.0, 2 * min(greater, less))


def _wilcoxon(d: np.ndarray, alternative: str) -> float:
    """Wilcoxon signed-rank p-value of paired differences d (1.0 when every difference is 0,
    where the test is undefined). Exact for small samples (with ties or zeros, by
    enumeration up to 13 differences), normal approximation beyond, as scipy chooses."""
    if d.size == 0 or np.all(d == 0):
        return 1.0
    nz = d[d != 0]
    tied = nz.size < d.size or np.unique(np.abs(nz)).size < nz.size
    if tied and d.size <= EXACT_TIED_MAX:
        return _exact_tied(d, alternative)
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
