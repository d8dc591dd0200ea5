"""Knife-edges: a verdict is `fragile` exactly when a comparison within its declared margin,
flipped, changes it; a verdict decided far from every threshold is not, and `verify` reports a
fragile verdict's flip without failing while a robust verdict's flip fails."""

from __future__ import annotations

from mmtrace.config import Claims, Verify
from mmtrace.verdicts import edges
from mmtrace.verdicts.claims import NOT_SUPPORTED, SUPPORTED, decide
from mmtrace.verdicts.evidence import Evidence
from mmtrace.verdicts.reproduction import compare, failures, report

RULES = Claims()
SIX = 6


def f1_evidence(p_peak: float, second: float = 0.01, second_p: float = 0.5) -> Evidence:
    """toy-llava's single-constraint MLP trace: an early peak at l0 with Holm p `p_peak`, and
    a middle layer l3 with mean IE `second` (p `second_p`)."""
    means = [0.4, 0.01, 0.01, second, 0.01, 0.01]
    p = [p_peak, 0.5, 0.5, second_p, 0.5, 0.5]
    entry = {
        "window": 1,
        "n_traced": 50,
        "mean_ie_at_constraint_by_layer": means,
        "p_holm_ie_positive_by_layer": p,
        "peak_layer_at_constraint": 0,
        "peak_mean_ie_at_constraint": 0.4,
    }
    trace = {"known": {"traces": {"single": {"mlp": {"window_1": entry}}}}}
    return Evidence({"toy-llava": "mllm"}, trace={"toy-llava": trace})


def f1(ev: Evidence):
    (row,) = [r for r in decide(ev, RULES) if r.claim == "F1"]
    return row


def test_a_p_value_far_below_alpha_is_robust():
    row = f1(f1_evidence(1e-6))
    assert row.verdict == SUPPORTED and row.fragile == []


def test_a_p_value_within_the_margin_of_alpha_makes_the_verdict_fragile():
    row = f1(f1_evidence(0.049))  # within 5% of alpha = 0.05
    assert row.verdict == SUPPORTED
    assert len(row.fragile) == 1 and "known/mlp/w1 l0 Holm p" in row.fragile[0]
    # just outside the margin (0.05 - 5% = 0.0475): robust again
    assert f1(f1_evidence(0.047)).fragile == []


def test_a_near_tied_peak_in_another_band_is_fragile_and_one_in_the_same_band_is_not():
    # l3 (middle) within 1e-4 of the early peak l0: the runner-up would flip F1
    row = f1(f1_evidence(1e-6, second=0.39995, second_p=1e-6))
    assert row.verdict == SUPPORTED and any("peak layer" in f for f in row.fragile)
    # far apart: robust
    assert f1(f1_evidence(1e-6, second=0.2, second_p=1e-6)).fragile == []


def test_a_near_edge_that_cannot_change_the_verdict_is_not_fragile():
    # l3 is near alpha, but it is not the peak either way: F1 stays supported when it flips
    row = f1(f1_evidence(1e-6, second=0.05, second_p=0.0499))
    assert row.verdict == SUPPORTED and row.fragile == []


def test_outside_recording_the_comparisons_are_plain():
    assert edges.below("p_value", "x", 0.049, 0.05) is True
    assert edges.above("ie", "x", None, 0.0) is False
    assert edges.best("ie", "x", [2, 0], [0.3, 0.1, 0.5]) == 2
    with edges.recording(RULES.margins, flip=0) as rec:
        assert edges.below("p_value", "x", 0.049, 0.05) is False  # the flipped one
        assert edges.below("p_value", "y", 0.049, 0.05) is True
    assert [e.near for e in rec.edges] == [True, True]  # 0.049 is within 5% of 0.05


def test_verify_reports_a_fragile_flip_and_fails_a_robust_one():
    cfg = Verify(tolerances={"default": {"abs": 0.0, "rel": 0.0}})
    ref = {"claim/F1/m/verdict": SUPPORTED, "claim/F5/m/verdict": SUPPORTED}
    run = {"claim/F1/m/verdict": NOT_SUPPORTED, "claim/F5/m/verdict": NOT_SUPPORTED}
    comps = compare(run, ref, cfg, fragile={"claim/F1/m"})
    failed = {c.name for c in failures(comps, cfg)}
    assert failed == {"claim/F5/m/verdict"}
    text = report(comps, cfg, "ref.json")
    assert "**differ** (fragile)" in text and "1 of them fragile" in text
