"""The claim rules on the controls: a negative control on which a rule says `supported` is a
broken rule and is named; a positive control's expected verdicts are scored, the others only
reported."""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.verdicts.evidence import Evidence
from mmtrace.verdicts.on_controls import markdown, on_controls

RULES = Claims()


def early_trace() -> dict:
    means = [0.4, 0.01, 0.01, 0.01, 0.01, 0.01]
    p = [1e-6, 0.5, 0.5, 0.5, 0.5, 0.5]
    e = {
        "window": 1,
        "n_traced": 50,
        "mean_ie_at_constraint_by_layer": means,
        "p_holm_ie_positive_by_layer": p,
    }
    return {"known": {"traces": {"single": {"mlp": {"window_1": e}, "attn": {"window_1": e}}}}}


def test_a_rule_firing_on_a_negative_control_is_named_and_a_positive_is_scored():
    ev = Evidence(
        {"decoy": "mllm", "positive": "mllm", "studied": "mllm"},
        controls={"decoy": "negative", "positive": "positive"},
        trace={"decoy": early_trace(), "positive": early_trace(), "studied": early_trace()},
    )
    out = on_controls(ev, RULES, {"positive": {"F1": "supported", "F2": "supported"}})
    f1 = {r["model"]: r for r in out["rows"] if r["claim"] == "F1"}
    assert set(f1) == {"decoy", "positive"}  # the studied model is not a control
    assert f1["decoy"]["verdict"] == "supported" and f1["decoy"]["agrees"] is False
    assert f1["positive"]["agrees"] is True
    f2 = {r["model"]: r for r in out["rows"] if r["claim"] == "F2"}
    assert f2["positive"]["agrees"] is False  # no multi-constraint trace: not what it expects
    assert "F1 on decoy" in out["broken"] and "F2 on positive" in out["broken"]
    text = markdown(out)
    assert "| F1 | supported ✗ | supported ✓ |" in text
    assert f"{out['agree']} of {out['scored']} scored" in text


def test_silence_on_a_negative_control_agrees():
    ev = Evidence({"random": "mllm"}, controls={"random": "negative"})
    out = on_controls(ev, RULES, {})
    assert out["rows"] and all(r["agrees"] for r in out["rows"])
    assert out["broken"] == []


def test_a_control_whose_constraint_reads_no_image_is_inconclusive_on_f3_not_a_crash():
    silent = {"splits": {"known": {"visual": {"n": 0, "n_zero_contribution": 40}}}}
    ev = Evidence({"cut": "mllm"}, controls={"cut": "negative"}, attention={"cut": silent})
    (f3,) = [r for r in on_controls(ev, RULES, {})["rows"] if r["claim"] == "F3"]
    assert f3["verdict"] == "inconclusive" and f3["agrees"]


def test_a_negative_names_what_its_construction_fixes_and_a_sanity_control_stays_silent():
    """`elsewhere` reads the image into the constraint as the positive does (F1 early storage
    there is absent): a named `supported` is scored as agreeing; on a sanity control an
    unnamed `supported` is a false positive."""
    ev = Evidence(
        {"elsewhere": "mllm", "dead": "mllm"},
        controls={"elsewhere": "negative", "dead": "sanity"},
        trace={"elsewhere": early_trace(), "dead": early_trace()},
    )
    out = on_controls(ev, RULES, {"elsewhere": {"F1": "supported"}})
    f1 = {r["model"]: r for r in out["rows"] if r["claim"] == "F1"}
    assert f1["elsewhere"]["expected"] == "supported" and f1["elsewhere"]["agrees"] is True
    assert f1["dead"]["agrees"] is False and "F1 on dead" in out["broken"]
    assert "| F1 | supported ✗ | supported ✓ |" in markdown(out)
