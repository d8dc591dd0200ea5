"""Holm's adjustment against its definition as a sequential rejection procedure."""

from __future__ import annotations

import numpy as np
import pytest

from mmtrace.stats import greater_than_zero, holm


def sequential_rejections(p: list[float], alpha: float) -> set[int]:
    """Holm (1979): order the p-values; reject while p_(j) <= alpha / (m - j), stop at the first
    that is not."""
    order = sorted(range(len(p)), key=p.__getitem__)
    rejected = set()
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        rejected.add(i)
    return rejected


def test_holm_rejects_what_the_sequential_procedure_rejects():
    rng = np.random.default_rng(0)
    for _ in range(500):
        m = int(rng.integers(1, 12))
        p = list(rng.uniform(0, 0.1, m) ** rng.uniform(0.5, 3))
        adjusted = holm(p)
        for alpha in (0.01, 0.05):
            assert {i for i, q in enumerate(adjusted) if q <= alpha} == sequential_rejections(
                p, alpha
            )
        assert all(q >= pi for q, pi in zip(adjusted, p, strict=True))


def test_untested_members_stay_none_and_do_not_count():
    assert holm([0.01, None, 0.04]) == [0.02, None, 0.04]
    assert holm([]) == []


def test_greater_than_zero_is_one_sided():
    assert greater_than_zero(np.linspace(0.1, 1, 20)) < 1e-4
    assert greater_than_zero(-np.linspace(0.1, 1, 20)) > 0.99
    assert greater_than_zero(np.zeros(5)) == 1.0


def test_small_tied_samples_get_scipys_exact_p_value():
    """With ties or zeros and at most 13 differences, the p-value is exact by enumerating the
    sign patterns (vectorised here); scipy's `wilcoxon` computes the same p-value through its
    generic permutation test, so it is the independent reference, on every alternative,
    including samples just above the exact range (normal approximation in both)."""
    from scipy import stats as sps

    from mmtrace.stats import _wilcoxon

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        n = int(rng.integers(2, 16))
        d = rng.integers(-3, 4, size=n) * rng.choice([1.0, 0.5])  # ties and zeros
        if np.all(d == 0):
            continue
        for alternative in ("greater", "less", "two-sided"):
            expected = sps.wilcoxon(d, alternative=alternative, zero_method="wilcox").pvalue
            assert _wilcoxon(d, alternative) == pytest.approx(float(expected), abs=1e-12)
            checked += 1
    assert checked > 120
