"""The figures' significance marks agree with the claims table: on synthetic summaries where the
uncorrected p-values are below alpha but the Holm-corrected ones are not (and where both are),
the stars of the ablation, Figs. 15-16 and Fig. 6 figures and the validation figure's marks say
what the claim rules of `mmtrace.verdicts` (the rows of results/claims.json) decide."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from mmtrace.config import Claims
from mmtrace.report import editing as editing_report
from mmtrace.report import transfer as transfer_report
from mmtrace.report import validation as validation_report
from mmtrace.report.significance import (
    ablation_stars,
    edit_stars,
    per_layer_stars,
    separation_marks,
)
from mmtrace.verdicts import controls
from mmtrace.verdicts import editing as edit_verdicts
from mmtrace.verdicts import transfer as transfer_verdicts
from mmtrace.verdicts.claims import NOT_SUPPORTED, SUPPORTED
from mmtrace.verdicts.evidence import Evidence, band

RULES = Claims()
# each raw p < 0.05, none after Holm over five (the old figures starred all of them)
MARGINAL = [0.03, 0.04, 0.02, 0.03, 0.9]
STRONG = [1e-4, 1e-4, 1e-4, 1e-4, 0.9]


def _drawn(monkeypatch, module) -> list[Figure]:
    """The figures a `fig_*` function of `module` builds (instead of saving them)."""
    figures: list[Figure] = []
    monkeypatch.setattr(module, "save_figure", lambda fig, stem: figures.append(fig) or [])
    return figures


def _stars(fig: Figure) -> int:
    return sum(t.get_text() == "*" for ax in fig.axes for t in ax.texts)


def _way(p_top_vs_random: list[float]) -> dict:
    ks = [1, 2, 4, 8, 16]
    ci = [[0.0, 0.2]] * 5
    curve = {"drop_p_answer": [0.1] * 5, "drop_p_answer_ci95": ci, "accuracy": [0.5] * 5}
    return {
        "k": ks,
        "n_visual": 16,
        "n": 40,
        "clean": {"p_answer": 0.9, "accuracy": 1.0},
        "top": {**curve, "drop_p_answer": [0.3] * 5},
        "random": curve,
        "bottom": curve,
        "p_value_top_vs_random": p_top_vs_random,
        "p_value_top_vs_bottom": p_top_vs_random,
    }


def _ablation_summary(block: list[float], mean: list[float]) -> dict:
    per_layer = {
        "n": 40,
        "drop_p_answer": [0.5, 0.1, 0.0],
        "drop_p_answer_ci95": [[0.4, 0.6], [0.0, 0.2], [0.0, 0.0]],
        "drop_accuracy": [0.5, 0.1, 0.0],
        "drop_accuracy_ci95": [[0.4, 0.6], [0.0, 0.2], [0.0, 0.0]],
        "p_holm_drop_positive": [1e-5, 0.2, 1.0],
    }
    split = {"n": 40, "block": _way(block), "mean": _way(mean), "per_layer": per_layer}
    return {
        "m": {
            "block_layers": [0, 1],
            "mean_images": 8,
            "ways": ["block", "mean"],
            "splits": {"known": split, "all": split},
        }
    }


@pytest.mark.parametrize(
    ("block", "mean", "verdict"),
    [(STRONG, STRONG, SUPPORTED), (STRONG, MARGINAL, NOT_SUPPORTED), (MARGINAL, MARGINAL, None)],
)
def test_ablation_stars_are_the_ablation_claims(monkeypatch, block, mean, verdict):
    summary = _ablation_summary(block, mean)
    (row,) = transfer_verdicts.ablation(Evidence({"m": "mllm"}, ablation=summary), RULES)
    pooled = summary["m"]["splits"]["all"]
    judged = 3  # the largest k below all 16 tokens
    stars = {w: ablation_stars(pooled[w], RULES.alpha) for w in ("block", "mean")}
    assert (row.verdict == SUPPORTED) == all(s[judged] for s in stars.values())
    if verdict is not None:
        assert row.verdict == verdict
    assert not any(ablation_stars(_way(MARGINAL), RULES.alpha))  # raw p < 0.05 everywhere
    figures = _drawn(monkeypatch, transfer_report)
    transfer_report.fig_ablation(summary, "m", "unused", RULES.alpha)
    per_panel = sum(sum(s) for s in stars.values()) + sum(
        per_layer_stars(pooled["per_layer"], RULES.alpha)
    )
    assert _stars(figures[0]) == 2 * per_panel  # two identical splits: known and all


def _attention_summary(p_values: list[float]) -> dict:
    n_layers = len(p_values)
    mean = [1.0] * n_layers
    group = {"n": 40, "mean": mean, "ci95": [[0.5, 1.5]] * n_layers}
    c = {
        "correct": group,
        "incorrect": {**group, "mean": [0.5] * n_layers},
        "p_value": p_values,
    }
    split = {"n": 80, "n_correct": 40, "n_incorrect": 40, "constraint_to_last": c}
    return {"m": {"reduce": "max", "correctness_split": "all", "splits": {"all": split}}}


@pytest.mark.parametrize(
    "p_values",
    [
        [0.9, 0.9, 0.03, 0.04, 0.9, 0.9],  # raw p < 0.05 at middle layers, not after Holm
        [0.9, 0.9, 1e-5, 0.9, 0.9, 0.9],  # layer 2 of 6 (middle) survives Holm
    ],
)
def test_separation_stars_are_f3b(monkeypatch, p_values):
    summary = _attention_summary(p_values)
    rules = RULES.model_copy(update={"min_errors": 10})
    (row,) = transfer_verdicts.separation(Evidence({"m": "mllm"}, attention=summary), rules)
    c = summary["m"]["splits"]["all"]["constraint_to_last"]
    marks = separation_marks(c, rules.alpha)
    middle = [i for i, m in enumerate(marks) if m > 0 and band(i, len(marks), rules) == "middle"]
    assert (row.verdict == SUPPORTED) == bool(middle)
    figures = _drawn(monkeypatch, transfer_report)
    transfer_report.fig_constraint_to_last(summary, "m", "unused", rules.alpha)
    assert _stars(figures[0]) == sum(m != 0 for m in marks)


def _editing_summary(p_ft: float, p_ftl: float) -> dict:
    stat = {"n": 40, "mean": 0.8, "ci95": [0.7, 0.9]}
    metrics = {
        m: stat
        for m in (
            "efficacy",
            "generalisation",
            "generalisation_renderings",
            "specificity",
            "specificity_neighbourhood",
            "specificity_same_image",
        )
    }
    low = {**metrics, "efficacy": {"n": 40, "mean": 0.5, "ci95": [0.4, 0.6]}}
    vs = {
        b: {"efficacy": {"p_value": p, "mean_difference": 0.3}}
        for b, p in (("finetune", p_ft), ("finetune_constrained", p_ftl))
    }
    scenario = {
        "n": 40,
        "unedited": metrics,
        "multedit": metrics,
        "finetune": low,
        "finetune_constrained": low,
        "multedit_vs": vs,
    }
    return {"m": {"layer": 0, "scenarios": {"error_correction": scenario}}}


@pytest.mark.parametrize(
    ("p_ft", "p_ftl", "stars"),
    [(0.03, 0.04, 0), (1e-4, 0.04, 2), (1e-4, 0.3, 1)],  # (0.03, 0.04): Holm 0.06 and 0.06
)
def test_edit_stars_are_f5(monkeypatch, p_ft, p_ftl, stars):
    summary = _editing_summary(p_ft, p_ftl)
    rules = RULES.model_copy(update={"min_errors": 10})
    (row,) = edit_verdicts.comparison(Evidence({"m": "mllm"}, editing=summary), rules)
    scenario = summary["m"]["scenarios"]["error_correction"]
    beaten = edit_stars(scenario, rules.alpha)
    assert sum(s for s, _p in beaten.values()) == stars
    assert (row.verdict == SUPPORTED) == all(s for s, _p in beaten.values())
    figures = _drawn(monkeypatch, editing_report)
    editing_report.fig_methods(summary, "m", "unused", rules.alpha)
    assert _stars(figures[0]) == stars


def test_validation_marks_are_the_validation_rows(repo_root, monkeypatch):
    """On the committed validation summary and a copy with one check flipped per control: the
    figure's red marks are exactly the summary's failed checks (found other than the control's
    construction implies), and a control's claim row is supported exactly when none of its
    marks is red."""
    summary = json.loads((repo_root / "reference" / "validation.json").read_text())
    flipped = json.loads(json.dumps(summary))
    for entry in flipped["models"].values():
        c = next(
            c
            for c in entry["checks"]
            if c["n"] and not c["diagnostic"] and c.get("expected") is not None
        )
        c["holds"] = not c["holds"]
        name = f"{c['method']}: {c['rule']}"
        wrong = c["holds"] != c["expected"]
        entry["failed"] = [x for x in entry["failed"] if x != name] + [name] * wrong
        entry["fired"] = [x for x in entry["fired"] if x != name] + [name] * (wrong and c["holds"])
    for data in (summary, flipped):
        marks = validation_report.marks(data)
        rows = {r.model: r for r in controls.rows(Evidence({}, validation=data), RULES)}
        for model, entry in data["models"].items():
            red = sorted(m["label"] for m in marks if m["model"] == model and m["ok"] is False)
            assert red == sorted(entry["failed"]), model
            if entry["control"] == "sanity":
                assert (rows[model].verdict == SUPPORTED) == (not entry["fired"])
            else:
                assert (rows[model].verdict == SUPPORTED) == (not red)
            assert {m["direction"] for m in marks} <= {">=", "<=", "="}
        figures = _drawn(monkeypatch, validation_report)
        validation_report.fig_validation(data, "unused")
        drawn = [c for ax in figures[-1].axes for c in ax.collections]
        assert len(drawn) == len(marks)
