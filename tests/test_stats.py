"""Holm's adjustment against its definition as a sequential rejection procedure."""

from __future__ import annotations

import numpy as np

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
