"""Fig. 17's statistics against independent computations: AUROC against scipy's Mann-Whitney U,
DeLong's variances against their brute-force O(mn) definition, the ROC curve's area against the
AUROC, and the layer selection on one half evaluated on the other."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mmtrace.transfer import failure


def _data(n=80, shift=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.6
    good = rng.normal(size=n) + shift * y  # informative
    weak = rng.normal(size=n) + 0.2 * shift * y
    return good, weak, y


def test_auroc_equals_mann_whitney_with_ties():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.random(60) < 0.5
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    assert failure.auroc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()))
    assert failure.auroc(np.where(y, 1.0, 0.0), y) == 1.0
    assert failure.auroc(np.where(y, 0.0, 1.0), y) == 0.0
    assert failure.auroc(np.ones(60), y) == 0.5


def test_roc_curve_area_is_auroc():
    good, _, y = _data()
    fpr, tpr = failure.roc_curve(good, y)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(failure.auroc(good, y))


def _delong_brute(a, b, y):
    """DeLong et al. 1988 from the definition: psi over every (positive, negative) pair."""
    out = []
    for s in (a, b):
        pos, neg = s[y], s[~y]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out.append((psi.mean(axis=1), psi.mean(axis=0)))
    (v10a, v01a), (v10b, v01b) = out
    m, n = y.sum(), (~y).sum()
    s10, s01 = np.cov(np.stack([v10a, v10b])), np.cov(np.stack([v01a, v01b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return v10a.mean() - v10b.mean(), var


def test_delong_matches_brute_force():
    good, weak, y = _data(n=70, seed=3)
    good = np.round(good, 1)  # ties exercise the mid-ranks
    got = failure.delong(good, weak, y)
    diff, var = _delong_brute(good, weak, y)
    assert got["difference"] == pytest.approx(diff)
    assert got["se"] ** 2 == pytest.approx(var)
    assert got["p_value"] == pytest.approx(2 * stats.norm.sf(abs(diff) / np.sqrt(var)))


def test_delong_identical_predictors_and_power():
    good, weak, y = _data(n=300, shift=1.5, seed=4)
    same = failure.delong(good, good, y)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    assert failure.delong(good, weak, y)["p_value"] < 1e-3


def test_delong_variance_agrees_with_bootstrap():
    good, weak, y = _data(n=200, seed=5)
    boot_sd = []
    rng = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    for _ in range(2000):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        boot_sd.append(failure.auroc(good[idx], y[idx]) - failure.auroc(weak[idx], y[idx]))
    assert failure.delong(good, weak, y)["se"] == pytest.approx(np.std(boot_sd), rel=0.15)


def test_bootstrap_interval_contains_estimate_and_is_seeded():
    good, weak, y = _data(seed=6)
    a = failure.bootstrap_aurocs(np.stack([good, weak]), y, n_boot=300, seed=1)
    b = failure.bootstrap_aurocs(np.stack([good, weak]), y, n_boot=300, seed=1)
    assert a == b
    for i, s in enumerate((good, weak)):
        lo, hi = a["ci95"][i]
        assert lo <= failure.auroc(s, y) <= hi
    lo, hi = a["difference_ci95"]
    assert lo <= failure.auroc(good, y) - failure.auroc(weak, y) <= hi


def test_split_halves_stratified_disjoint_deterministic():
    y = np.array([True] * 21 + [False] * 7)
    sel, ev = failure.split_halves(y, seed=3)
    assert np.intersect1d(sel, ev).size == 0 and sel.size + ev.size == y.size
    assert (~y[sel]).sum() == 4 and (~y[ev]).sum() == 3
    assert y[sel].sum() == 11 and y[ev].sum() == 10
    again = failure.split_halves(y, seed=3)
    assert np.array_equal(sel, again[0]) and np.array_equal(ev, again[1])


def test_predict_correctness_picks_informative_layer():
    rng = np.random.default_rng(7)
    y = rng.random(200) < 0.7
    per_layer = rng.normal(size=(200, 6))
    per_layer[:, 4] += 2.0 * y  # only layer 4 carries the signal
    confidence = rng.random(200)  # uninformative
    out = failure.predict_correctness(per_layer, confidence, y, n_boot=200, seed=0)
    assert out["layer"] == 4
    assert out["contribution"]["auroc"] > 0.8
    assert abs(out["confidence"]["auroc"] - 0.5) < 0.15
    assert out["difference"]["delong_p"] < 1e-3
    assert out["selection"]["n"] + out["evaluation"]["n"] == 200
    assert len(out["selection_auroc_by_layer"]) == 6


def test_predict_correctness_skips_when_too_few_errors():
    y = np.array([True] * 30 + [False] * 3)
    out = failure.predict_correctness(np.ones((33, 4)), np.ones(33), y, n_boot=10, seed=0)
    assert "skipped" in out and out["n_incorrect"] == 3
    with pytest.raises(ValueError, match="both classes"):
        failure.auroc(np.ones(5), np.ones(5, dtype=bool))
