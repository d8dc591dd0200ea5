"""The reproduction check: tolerances by the most specific pattern, every statistic of either
side compared (a missing one differs), verdict flips named; and `verify` (the step) fails
naming the number a perturbed reference moves beyond its tolerance."""

from __future__ import annotations

import json

import pytest

from mmtrace.config import Verify
from mmtrace.steps.claims import ReproductionError, verify
from mmtrace.verdicts.reproduction import compare, failures, report, tolerance_for

CFG = Verify(
    tolerances={
        "default": {"abs": 0.05, "rel": 0.0},
        "accuracy": {"abs": 0.01, "rel": 0.0},
        "trace/*/peak_layer": {"abs": 1.0, "rel": 0.0},
    }
)
STATS = {
    "accuracy/m/known": 0.9,
    "trace/m/known/single/mlp/window_1/peak_layer": 2,
    "trace/m/known/single/mlp/window_1/peak_ie": 0.3,
    "claim/F1/m/verdict": "supported",
}


def test_the_most_specific_pattern_wins():
    assert tolerance_for("accuracy/m/known", CFG)[0] == "accuracy"
    assert tolerance_for("trace/m/known/single/mlp/window_1/peak_layer", CFG)[0] == (
        "trace/*/peak_layer"
    )
    assert tolerance_for("trace/m/known/single/mlp/window_1/peak_ie", CFG)[0] == "default"
    assert tolerance_for("accuracyish", CFG)[0] == "default"  # a path prefix, not a string one


def test_identical_runs_agree_and_the_report_says_pass():
    comps = compare(STATS, STATS, CFG)
    assert all(c.agrees for c in comps) and not failures(comps, CFG)
    assert "**PASS**" in report(comps, CFG, "ref.json")


@pytest.mark.parametrize(
    ("name", "value", "agrees"),
    [
        ("accuracy/m/known", 0.905, True),
        ("accuracy/m/known", 0.92, False),
        ("trace/m/known/single/mlp/window_1/peak_layer", 3, True),
        ("trace/m/known/single/mlp/window_1/peak_layer", 4, False),
        ("trace/m/known/single/mlp/window_1/peak_ie", float("nan"), False),
    ],
)
def test_tolerances_decide(name, value, agrees):
    (c,) = [c for c in compare({**STATS, name: value}, STATS, CFG) if c.name == name]
    assert c.agrees is agrees


def test_a_missing_statistic_differs_and_a_verdict_flip_is_named():
    run = {k: v for k, v in STATS.items() if k != "accuracy/m/known"}
    run["claim/F1/m/verdict"] = "not supported"
    failed = {c.name for c in failures(compare(run, STATS, CFG), CFG)}
    assert failed == {"accuracy/m/known", "claim/F1/m/verdict"}
    reported_only = CFG.model_copy(update={"verdicts": "report"})
    comps = compare(run, STATS, reported_only)
    assert {c.name for c in failures(comps, reported_only)} == {"accuracy/m/known"}
    assert "| claim/F1/m | supported | not supported | **differ** |" in report(
        comps, reported_only, "ref.json"
    )


def test_verify_fails_naming_the_perturbed_number(tmp_path):
    run = tmp_path / "claims.json"
    run.write_text(json.dumps({"statistics": STATS}))
    ref = tmp_path / "reference.json"
    settings = CFG.model_dump()
    ref.write_text(json.dumps({"statistics": STATS}))
    verify(claims=run, reference=ref, settings=settings, reproduction=tmp_path / "ok.md")
    assert "**PASS**" in (tmp_path / "ok.md").read_text()

    perturbed = {**STATS, "trace/m/known/single/mlp/window_1/peak_ie": 0.3 + 0.051}
    ref.write_text(json.dumps({"statistics": perturbed}))
    with pytest.raises(ReproductionError, match="trace/m/known/single/mlp/window_1/peak_ie"):
        verify(claims=run, reference=ref, settings=settings, reproduction=tmp_path / "bad.md")
    assert "**differ**" in (tmp_path / "bad.md").read_text()


def test_verify_without_a_reference_says_which_file(tmp_path):
    run = tmp_path / "claims.json"
    run.write_text(json.dumps({"statistics": STATS}))
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        verify(
            claims=run,
            reference=tmp_path / "nowhere.json",
            settings={},
            reproduction=tmp_path / "r.md",
        )
