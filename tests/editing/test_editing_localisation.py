"""Hase et al.'s test (does localisation inform editing?) on inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from mmtrace.editing.localisation import from_sweep, informs_editing

LAYERS = [0, 1, 2, 3]


def test_aligned_peaks_give_positive_rho_and_a_small_p():
    rng = np.random.default_rng(0)
    peaks = rng.integers(0, 4, size=20)
    ie = np.array([[1.0 if layer == p else 0.1 * layer for layer in LAYERS] for p in peaks])
    eff = ie * 0.8 + 0.05  # a monotone function of the IE: rho = 1 for every question
    out = informs_editing(ie, eff, LAYERS, n_perm=500)
    assert out["n_with_rho"] == 20 and out["median_rho"] == pytest.approx(1.0)
    assert out["p_rho_positive"] < 1e-4 and out["same_best_layer"] == 1.0
    assert all(e["rho"] == pytest.approx(1.0) for e in out["per_layer"])
    assert out["within_layer_rho"] == pytest.approx(1.0)
    assert out["p_within_layer"] == pytest.approx(1 / 501)  # no permutation reaches it


def test_a_shared_depth_trend_is_not_localisation():
    """Both fall with depth, independently per question: every question's rho over layers is
    positive, yet within a layer the tracing effect says nothing about the edit."""
    rng = np.random.default_rng(2)
    trend = np.array([4.0, 3.0, 2.0, 1.0])
    ie = trend + rng.random((30, 4))
    eff = trend + rng.random((30, 4))
    out = informs_editing(ie, eff, LAYERS, n_perm=500, seed=1)
    assert out["mean_rho"] > 0.8 and out["p_rho_positive"] < 1e-4
    assert abs(out["within_layer_rho"]) < 0.3 and out["p_within_layer"] > 0.05


def test_unrelated_values_give_no_evidence_and_constant_rows_no_rho():
    rng = np.random.default_rng(1)
    ie, eff = rng.random((40, 4)), rng.random((40, 4))
    ie[0] = 0.0  # a question without any tracing effect has no rho
    out = informs_editing(ie, eff, LAYERS, n_perm=500)
    assert out["n_questions"] == 40 and out["n_with_rho"] == 39
    assert out["p_within_layer"] > 0.05
    assert out["per_question_rho"][0] is None
    assert out["p_rho_positive"] > 0.05
    assert all(e["p_holm"] >= e["p_value"] for e in out["per_layer"])


def test_reversed_peaks_give_negative_rho():
    ie = np.tile(np.array([1.0, 0.5, 0.2, 0.0]), (12, 1))
    eff = ie[:, ::-1].copy()
    out = informs_editing(ie, eff, LAYERS)
    assert out["median_rho"] == pytest.approx(-1.0) and out["p_rho_positive"] > 0.5


def test_from_sweep_aligns_questions_and_layers():
    sweep = {
        "layers": [0, 2],
        "qids": ["a", "b", "c"],
        "by_layer": {"0": {"efficacy": [0.9, 0.1, 0.5]}, "2": {"efficacy": [0.1, 0.9, 0.6]}},
        "localisation": {
            "kind": "mlp",
            "window": 1,
            # stored in another order and over every layer: only layers 0 and 2 are read
            "records": [
                {"qid": "c", "ie": [0.2, 9.0, 0.3]},
                {"qid": "a", "ie": [0.8, 9.0, 0.0]},
                {"qid": "b", "ie": [0.0, 9.0, 0.7]},
            ],
        },
    }
    out = from_sweep(sweep)
    assert out["kind"] == "mlp" and out["n_questions"] == 3
    assert out["per_question_rho"] == pytest.approx([1.0, 1.0, 1.0])
    assert from_sweep({**sweep, "localisation": None}) is None


def test_shapes_must_match():
    with pytest.raises(ValueError, match="do not match"):
        informs_editing(np.zeros((3, 4)), np.zeros((3, 3)), LAYERS)
