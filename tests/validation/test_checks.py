"""The validation checks on synthetic records whose answer is known: a trace whose effect sits
on the planted route passes, one whose effect sits elsewhere fails, a flat one declares no site;
the planted-token share and the knockout rule likewise."""

from __future__ import annotations

import numpy as np

from mmtrace.config import Validation
from mmtrace.models.compiled_routes import truth_of
from mmtrace.validation import checks
from mmtrace.validation.routes import cell_masks, planted_mask
from mmtrace.validation.summary import summarise

ROUTES = {
    "hidden": {"constraint_last": [0, 1], "last_token": [2, 3]},
    "mlp": {"constraint_last": [1], "last_token": [2]},
    "attn": {"constraint_last": [0], "last_token": [2]},
}


def _trace(cells: dict[str, tuple[int, int]], window=1, value=1.0) -> dict:
    """Positions 10..15 (15 is the last token), the constraint's last token at 12."""
    ie = {}
    for kind in ("mlp", "attn", "hidden"):
        m = np.zeros((6, 4))
        if kind in cells:
            m[cells[kind]] = value
        ie[kind] = m.tolist()
    return {
        "positions": list(range(10, 16)),
        "tokens": ["a", "b", "Ġbuilding", "c", "d", ":"],
        "constraint_positions": {"visual": [11, 12]},
        "layers": [0, 1, 2, 3],
        "window": window,
        "window_style": "centered",
        "setting": "single",
        "ie": ie,
    }


def test_planted_mask_follows_the_window():
    t = _trace({})
    mask = planted_mask(t, "mlp", ROUTES)
    assert mask[2].tolist() == [False, True, False, False]  # the constraint's last token, layer 1
    assert mask[5].tolist() == [False, False, True, False]  # the last token, layer 2
    wide = planted_mask({**t, "window": 3}, "mlp", ROUTES)
    assert wide[2].tolist() == [True, True, True, False]  # every window touching layer 1


def truth(variant: str) -> dict:
    """A 4-layer compiled control's ground truth (routes and expected cells, windows 1 and 3)."""
    return {
        **truth_of(variant, 4, [1, 3], "centered"),
        "control": "positive" if variant == "positive" else "negative",
        "planted_visual_tokens": [12, 13, 14, 15],
    }


def traced(t: dict, window: int = 1, drop: float = 0.9, **override) -> dict:
    """A trace that does exactly what ground truth `t` declares: every restore cell recovers
    the whole drop, every quiet cell nothing; `override` sets kind -> {(row, col): value}."""
    base = _trace({}, window=window)
    base.update({"p_clean": 0.95, "p_corr": 0.95 - drop})
    for kind in ("mlp", "attn", "hidden"):
        restore, _ = cell_masks(base, t["expected"]["windows"][str(window)][kind])
        ie = np.where(restore, drop, 0.0)
        for cell, value in override.get(kind, {}).items():
            ie[cell] = value
        base["ie"][kind] = ie.tolist()
    return base


def rules_of(rows: list[dict]) -> dict:
    return {(r["method"], r["rule"]): r for r in rows}


def test_a_trace_that_shows_every_declared_cell_passes_and_one_that_misses_storage_fails():
    rules, t = Validation(windows=[1, 3]), truth("positive")
    good = [traced(t, w) for w in (1, 3) for _ in range(3)]
    rows = rules_of(checks.tracing(good, t, rules))
    assert all(r["holds"] == r["expected"] for r in rows.values()), rows
    assert rows[("tracing mlp w1", "declared cells restore")]["value"] == 1.0
    # the storage MLP (constraint's last token, layer 1) restores nothing: a control whose
    # later layers read a flag, not what the MLP stores; the argmax still lies on the route
    missed = [traced(t, 1, mlp={(2, 1): 0.0}) for _ in range(3)]
    rows = rules_of(checks.tracing(missed, t, Validation(windows=[1])))
    assert rows[("tracing mlp w1", "argmax on the route")]["holds"]
    assert not rows[("tracing mlp w1", "declared cells restore")]["holds"]
    # an effect where the truth says nothing happens
    noisy = [traced(t, 1, mlp={(4, 1): 0.5}) for _ in range(3)]
    rows = rules_of(checks.tracing(noisy, t, Validation(windows=[1])))
    assert not rows[("tracing mlp w1", "declared cells stay quiet")]["holds"]


def test_a_decoy_is_expected_silent_at_the_constraint_and_a_site_there_fires():
    rules, t = Validation(windows=[1]), truth("decoy")
    silent = [traced(t, 1, drop=0.0) for _ in range(3)]
    out = summarise({"decoy": "negative"}, {"decoy": t}, {"decoy": silent}, {}, {}, {}, rules)
    entry = out["models"]["decoy"]
    assert entry["fired"] == [] and entry["failed"] == [] and out["false_positive_rate"] == 0
    broken = [traced(t, 1, drop=0.0, mlp={(2, 1): 0.8}) for _ in range(3)]  # a made-up site
    out = summarise({"decoy": "negative"}, {"decoy": t}, {"decoy": broken}, {}, {}, {}, rules)
    assert "tracing mlp w1: site declared" in out["models"]["decoy"]["fired"]
    assert out["false_positive_rate"] > 0


def test_a_sanity_check_is_reported_apart_from_the_false_positive_rate():
    rules = Validation(windows=[1])
    flat = [_trace({}, value=0.0)] * 3
    loud = [_trace({"mlp": (2, 1)})] * 3
    out = summarise({"random": "sanity"}, {}, {"random": flat}, {}, {}, {}, rules)
    assert out["models"]["random"]["fired"] == [] and out["false_positive_rate"] is None
    out = summarise({"random": "sanity"}, {}, {"random": loud}, {}, {}, {}, rules)
    assert out["sanity_fired"] == {"random": ["tracing mlp w1: site declared"]}
    assert out["false_positive_rate"] is None  # sanity checks are not the false-positive rate


def test_planted_share_and_knockouts():
    rules = Validation()
    planted = [12, 13, 14, 15]
    dominant = [{"visual_to_constraint": [0.001] * 12 + [1.0] * 4}]
    spread = [{"visual_to_constraint": [1.0] * 16}]
    assert checks.contributions(dominant, planted, rules)[0]["holds"]
    assert not checks.contributions(spread, planted, rules)[0]["holds"]
    knock = {
        "ks": [1, 4],
        "block": {
            "top": {"correct": [1.0, 0.0]},
            "random": {"correct": [1.0, 1.0]},
            "bottom": {"correct": [1.0, 1.0]},
        },
    }
    assert checks.ablation([knock], 4, rules)[0]["holds"]
    # random knockouts that hit the code are reported, not ruled on; bottom-ranked ones are
    knock["block"]["random"]["correct"] = [1.0, 0.2]
    (row,) = checks.ablation([knock], 4, rules)
    assert row["holds"] and "random 0.20" in row["statistic"]
    knock["block"]["bottom"]["correct"] = [1.0, 0.2]
    assert not checks.ablation([knock], 4, rules)[0]["holds"]


def test_knockouts_are_not_scored_where_the_constraint_reads_no_image():
    """A negative that answers by another route (its constraint reads nothing): Eq. 1's
    ranking orders zeros, so its knockout rows are reported with no expectation; a control
    that answers nothing must not fire them."""
    rules = Validation()
    knock = {
        "ks": [4],
        "block": {k: {"correct": [v]} for k, v in (("top", 0.0), ("random", 1), ("bottom", 1))},
    }
    contributions = [{"visual_to_constraint": [0.0] * 16}]
    planted = {"decoy": [12, 13, 14, 15], "dead": [12, 13, 14, 15]}
    out = summarise(
        {"decoy": "negative", "dead": "sanity"},
        {},
        {},
        {"decoy": contributions, "dead": contributions},
        {"decoy": [knock], "dead": [knock]},
        {},
        rules,
        planted,
    )
    (decoy,) = [c for c in out["models"]["decoy"]["checks"] if c["method"].startswith("abl")]
    assert decoy["holds"] and decoy["expected"] is None
    assert out["models"]["decoy"]["failed"] == []
    (dead,) = [c for c in out["models"]["dead"]["checks"] if c["method"].startswith("abl")]
    assert dead["expected"] is False
    assert out["models"]["dead"]["fired"] == ["ablation (block, k=4): top-k knocks the answer out"]


def test_a_trained_planted_control_is_scored_on_its_planted_tokens_only():
    """A model trained on the planted world has no ground-truth route: its traces are not
    validated (even a trace that would fail the compiled model's route), its Eq. 1 share and
    knockouts are, against the planted tokens given for its data."""
    rules = Validation(windows=[1])
    off_route = [_trace({"mlp": (4, 1)})]
    contributions = {"trained": [{"visual_to_constraint": [0.001] * 12 + [1.0] * 4}]}
    knock = {
        "ks": [1, 4],
        "block": {
            "top": {"correct": [1.0, 0.0]},
            "random": {"correct": [1.0, 1.0]},
            "bottom": {"correct": [1.0, 1.0]},
        },
        "mean": {
            "top": {"correct": [1.0, 0.0]},
            "random": {"correct": [1.0, 1.0]},
            "bottom": {"correct": [1.0, 1.0]},
            "mask": {"correct": [1.0, 0.0]},
        },
    }
    out = summarise(
        {"trained": "positive"},
        {},
        {"trained": off_route},
        contributions,
        {"trained": [knock]},
        {},
        rules,
        {"trained": [12, 13, 14, 15]},
    )
    entry = out["models"]["trained"]
    assert entry["ground_truth"] == "planted tokens"
    assert {r["method"] for r in entry["checks"]} == {
        "Eq. 1",
        "ablation (mean, k=4, planted mask)",
        "ablation (block, k=4)",
        "ablation (mean, k=4)",
    }
    assert (entry["passed"], entry["total"], entry["failed"]) == (4, 4, [])
    # a control that does not need its planted tokens fails its own premise
    knock["mean"]["mask"]["correct"] = [1.0, 1.0]
    out = summarise(
        {"trained": "positive"},
        {},
        {},
        contributions,
        {"trained": [knock]},
        {},
        rules,
        {"trained": [12, 13, 14, 15]},
    )
    assert out["models"]["trained"]["failed"] == [
        "ablation (mean, k=4, planted mask): the planted tokens carry the answer"
    ]
    # the same data with its planted tokens spread out fails the Eq. 1 rule
    spread = {"trained": [{"visual_to_constraint": [1.0] * 16}]}
    out = summarise(
        {"trained": "positive"}, {}, {}, spread, {}, {}, rules, {"trained": [12, 13, 14, 15]}
    )
    assert out["models"]["trained"]["failed"] == ["Eq. 1: planted tokens dominate"]


def _edit_summary(efficacy: dict[str, float]) -> dict:
    def metrics(eff: float, spec: float) -> dict:
        return {
            "n": 8,
            "efficacy": {"mean": eff},
            "generalisation": {"mean": eff},
            "specificity": {"mean": spec},
        }

    e = {"unedited": metrics(0.0, 0.9), "variants": {"release": {"lr": 0.1, "steps": 10}}}
    for method, eff in efficacy.items():
        e[method] = metrics(eff, 0.9)
    return {"scenarios": {"long_tail": e}}


def test_a_multedit_variant_is_reported_and_counts_in_no_verdict():
    rules = Validation(windows=[1])
    truth = {"pos": {"control": "positive", "planted_visual_tokens": [12], "storage": {"layer": 1}}}
    edits = {"pos": _edit_summary({"multedit": 0.875, "multedit@release": 1.0})}
    out = summarise({"pos": "positive"}, truth, {}, {}, {}, edits, rules)["models"]["pos"]
    variant = [r for r in out["checks"] if r["diagnostic"]]
    assert [r["method"] for r in variant] == ["MultEdit at release (lr=0.1, steps=10)"] * 3
    assert all(r["holds"] for r in variant)
    assert out["failed"] == ["MultEdit: efficacy", "MultEdit: generalisation"]
    assert out["total"] == 3 and out["passed"] == 1  # the variant's three rows are not counted
    # a failing variant does not fail the control either
    edits = {"pos": _edit_summary({"multedit": 1.0, "multedit@release": 0.1})}
    out = summarise({"pos": "positive"}, truth, {}, {}, {}, edits, rules)["models"]["pos"]
    assert out["failed"] == [] and out["passed"] == out["total"] == 3
