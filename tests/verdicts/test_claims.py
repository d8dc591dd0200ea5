"""The claims' decision rules on synthetic summaries whose answer is known: each rule says
`supported`, `not supported` or `inconclusive` exactly where it should."""

from __future__ import annotations

import numpy as np
import pytest

from mmtrace.config import Claims
from mmtrace.stats import holm
from mmtrace.verdicts import controls, editing, storage, transfer
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, decide
from mmtrace.verdicts.evidence import Evidence, band, layer_evidence

RULES = Claims()
SIX = 6  # layers: l0 early, l1-l3 middle, l4-l5 late (the paper's bands, verdicts.paper)


def entry(means, p, n=50, window=1):
    return {
        "window": window,
        "n_traced": n,
        "mean_ie_at_constraint_by_layer": means,
        "p_holm_ie_positive_by_layer": p,
        "peak_layer_at_constraint": max(range(len(means)), key=means.__getitem__),
        "peak_mean_ie_at_constraint": max(means),
    }


def traced(setting, kinds_windows):
    """{split: {traces: {setting: {kind: {window_w: entry}}}}} for one split."""
    return {
        "known": {
            "traces": {
                setting: {
                    kind: {f"window_{e['window']}": e for e in entries}
                    for kind, entries in kinds_windows.items()
                }
            }
        }
    }


SIG, NS = 1e-6, 0.5


def peak_at(layer, n=50, window=1, significant=True):
    means = [0.01] * SIX
    means[layer] = 0.4
    p = [NS] * SIX
    if significant:
        p[layer] = SIG
    return entry(means, p, n=n, window=window)


def test_band_by_relative_depth():
    assert [band(layer, SIX, RULES) for layer in range(SIX)] == [
        "early",
        "middle",
        "middle",
        "middle",
        "late",
        "late",
    ]
    assert band(0, 1, RULES) == "early"


def test_a_causal_layer_needs_its_holm_p_below_alpha_and_a_positive_mean():
    le = layer_evidence(entry([0.3, -0.2, 0.1, 0, 0, 0], [SIG, SIG, 0.2, NS, NS, NS]), RULES)
    assert le.causal == [0] and le.peak == 0
    assert (
        layer_evidence(
            {**entry([0.3] * SIX, [SIG] * SIX), "p_holm_ie_positive_by_layer": None}, RULES
        ).causal
        is None
    )


@pytest.mark.parametrize(
    ("layer", "significant", "n", "verdict"),
    [
        (0, True, 50, SUPPORTED),  # early peak
        (2, True, 50, NOT_SUPPORTED),  # middle peak
        (4, True, 50, NOT_SUPPORTED),  # late peak
        (0, False, 50, NOT_SUPPORTED),  # no causal layer at all
        (0, True, 5, INCONCLUSIVE),  # too few traced
    ],
)
def test_f1_early_storage(layer, significant, n, verdict):
    ev = Evidence(
        {"m": "mllm"},
        trace={
            "m": traced(
                "single",
                {
                    "mlp": [peak_at(layer, n=n, significant=significant)],
                    "attn": [peak_at(layer, n=n, significant=significant)],
                },
            )
        },
    )
    (row,) = [r for r in storage.rows(ev, RULES) if r.claim == "F1"]
    assert row.verdict == verdict, row.reason


def test_f1_llm_wants_middle_layers_and_controls_are_not_studied():
    ev = Evidence(
        {"llm": "llm", "ctrl": "llm"},
        controls={"ctrl": "negative"},
        trace={
            "llm": traced("llm", {"mlp": [peak_at(2, window=3)]}),
            "ctrl": traced("llm", {"mlp": [peak_at(0, window=3)]}),
        },
    )
    rows = [r for r in storage.rows(ev, RULES) if r.claim == "F1-LLM"]
    assert [(r.model, r.verdict) for r in rows] == [("llm", SUPPORTED)]


def test_f2_needs_an_early_and_a_middle_causal_layer():
    both = entry([0.3, 0.0, 0.2, 0.0, 0.0, 0.0], [SIG, NS, SIG, NS, NS, NS], window=3)
    early_only = entry([0.3, 0.0, 0.2, 0.0, 0.0, 0.0], [SIG, NS, NS, NS, NS, NS], window=3)
    for e, verdict in ((both, SUPPORTED), (early_only, NOT_SUPPORTED)):
        ev = Evidence({"m": "mllm"}, trace={"m": traced("multi", {"mlp": [e]})})
        (row,) = [r for r in storage.rows(ev, RULES) if r.claim == "F2"]
        assert row.verdict == verdict


def sweep(first_window_restoring, n=50, windows=(1, 2, 3, 4, 5, 6), drop=0.6):
    """A window sweep whose mlp restores 0.4 (>= half the drop 0.6) at layer 1 from
    `first_window_restoring` on, and 0.1 below it."""
    per_window = []
    for w in windows:
        means = [0.0] * SIX
        means[1] = 0.4 if w >= first_window_restoring else 0.1
        per_window.append(
            {"mean_ie_by_layer": means, "p_holm_ie_positive_by_layer": [NS, SIG, NS, NS, NS, NS]}
        )
    return {"n": n, "windows": list(windows), "mean_drop": drop, "kinds": {"mlp": per_window}}


@pytest.mark.parametrize(
    ("multi", "single", "verdict"),
    [(3, 1, SUPPORTED), (1, 1, NOT_SUPPORTED), (7, 1, INCONCLUSIVE)],  # 7: never restores
)
def test_f2_window_smallest_window_restoring_half_the_drop(multi, single, verdict):
    ev = Evidence(
        {"m": "mllm"},
        trace={"m": {"known": {"window_sweep": {"multi": sweep(multi), "single": sweep(single)}}}},
    )
    rows = [r for r in storage.windows(ev, RULES) if r.claim == "F2-window"]
    assert [r.verdict for r in rows] == [verdict], rows[0].reason


def test_window_rows_without_a_sweep_are_inconclusive_and_name_the_pair():
    ev = Evidence(
        {"m": "mllm", "l": "llm"},
        trace={
            "l": {"known": {"window_sweep": {"llm": sweep(3)}}},
            "m": {"known": {"window_sweep": {"single": sweep(1)}}},
        },
    )
    rows = {r.claim: r for r in storage.windows(ev, RULES)}
    assert rows["F2-window"].verdict == INCONCLUSIVE
    assert rows["F1-LLM-window"].model == "l vs m"
    assert rows["F1-LLM-window"].verdict == SUPPORTED


def attention(n_incorrect, p_values, correct_mean, incorrect_mean, contribution, difference):
    return {
        "m": {
            "splits": {
                "all": {
                    "constraint_to_last": {
                        "correct": {"mean": correct_mean, "n": 500},
                        "incorrect": {"mean": incorrect_mean, "n": n_incorrect},
                        "p_value": p_values,
                    },
                    "failure_prediction": {
                        "evaluation": {"n": 250, "n_incorrect": n_incorrect},
                        "layer": 2,
                        "contribution": {"auroc": sum(contribution) / 2, "ci95": contribution},
                        "confidence": {"auroc": 0.9, "ci95": [0.85, 0.95]},
                        "difference": {"auroc": -0.2, "ci95": difference},
                    },
                }
            }
        }
    }


@pytest.mark.parametrize(
    ("n_incorrect", "p_l2", "verdict"),
    [(100, 1e-4, SUPPORTED), (100, 0.2, NOT_SUPPORTED), (10, 1e-4, INCONCLUSIVE)],
)
def test_f3b_middle_layer_separation_is_holm_corrected(n_incorrect, p_l2, verdict):
    p = [0.5, 0.5, p_l2, 0.5, 0.5, 0.5]
    ev = Evidence(
        {"m": "mllm"},
        attention=attention(n_incorrect, p, [1.0] * SIX, [0.5] * SIX, [0.6, 0.7], [-0.3, -0.1]),
    )
    (row,) = transfer.separation(ev, RULES)
    assert row.verdict == verdict, row.reason
    # 0.01 on one of six layers is significant alone, but not after Holm (6 x 0.01 > 0.05)
    assert holm([0.01, 0.5, 0.5, 0.5, 0.5, 0.5])[0] > RULES.alpha


@pytest.mark.parametrize(
    ("contribution", "difference", "n_incorrect", "verdict"),
    [
        ([0.55, 0.7], [-0.3, -0.1], 100, SUPPORTED),
        ([0.45, 0.7], [-0.3, -0.1], 100, NOT_SUPPORTED),  # contribution at chance
        ([0.55, 0.7], [-0.3, 0.05], 100, NOT_SUPPORTED),  # confidence not better
        ([0.55, 0.7], [-0.3, -0.1], 12, INCONCLUSIVE),
    ],
)
def test_f4_contribution_and_confidence(contribution, difference, n_incorrect, verdict):
    ev = Evidence(
        {"m": "mllm"},
        attention=attention(
            n_incorrect, [0.5] * SIX, [1.0] * SIX, [1.0] * SIX, contribution, difference
        ),
    )
    (row,) = transfer.prediction(ev, RULES)
    assert row.verdict == verdict, row.reason


def test_ablation_top_against_random_at_the_largest_k():
    def way(top, rnd, p):
        return {
            "k": [1, 8],
            "top": {"drop_p_answer": [0.0, top]},
            "random": {"drop_p_answer": [0.0, rnd]},
            "p_value_top_vs_random": [0.5, p],
        }

    for block, verdict in ((way(0.3, 0.1, 1e-4), SUPPORTED), (way(0.1, 0.3, 1e-4), NOT_SUPPORTED)):
        ev = Evidence(
            {"m": "mllm"},
            ablation={
                "m": {"splits": {"all": {"n": 100, "block": block, "mean": way(0.3, 0.1, 1e-4)}}}
            },
        )
        (row,) = transfer.ablation(ev, RULES)
        assert row.verdict == verdict, row.reason


def scenario(n, diffs, p, spec_after):
    stat = {"mean": 0.8}
    return {
        "n": n,
        "unedited": {"specificity": {"mean": 1.0}},
        "multedit": {"efficacy": stat, "specificity": {"mean": spec_after}},
        "multedit_vs": {
            b: {"efficacy": {"mean_difference": d, "p_value": p}}
            for b, d in zip(editing.BASELINES, diffs, strict=True)
        },
    }


@pytest.mark.parametrize(
    ("n", "diffs", "spec_after", "verdict"),
    [
        (100, (0.2, 0.3), 0.99, SUPPORTED),
        (100, (-0.2, 0.3), 0.99, NOT_SUPPORTED),  # fine-tuning is better
        (100, (0.2, 0.3), 0.80, NOT_SUPPORTED),  # specificity lost
        (10, (0.2, 0.3), 0.99, INCONCLUSIVE),
    ],
)
def test_f5_multedit_against_both_baselines(n, diffs, spec_after, verdict):
    ev = Evidence(
        {"m": "mllm"},
        editing={"m": {"scenarios": {"long_tail": scenario(n, diffs, 1e-5, spec_after)}}},
    )
    (row,) = editing.comparison(ev, RULES)
    assert row.verdict == verdict, row.reason


def test_f6_best_edit_layer_must_be_a_causal_layer():
    sweep = {str(layer): {"efficacy": {"mean": e}} for layer, e in enumerate([0.2, 0.9, 0.3])}
    for causal_layer, verdict in ((1, SUPPORTED), (4, NOT_SUPPORTED)):
        ev = Evidence(
            {"m": "mllm"},
            trace={"m": traced("single", {"mlp": [peak_at(causal_layer)]})},
            editing={"m": {"sweep": {"by_layer": sweep}}},
        )
        (row,) = editing.layer_sweep(ev, RULES)
        assert row.verdict == verdict, row.reason
    no_trace = Evidence({"m": "mllm"}, editing={"m": {"sweep": {"by_layer": sweep}}})
    assert editing.layer_sweep(no_trace, RULES)[0].verdict == INCONCLUSIVE


@pytest.mark.parametrize(
    ("n", "rho", "p", "verdict"),
    [
        (20, 0.6, 1e-4, SUPPORTED),
        (20, 0.1, 0.3, NOT_SUPPORTED),  # no evidence that localisation informs editing
        (20, -0.5, 0.99, NOT_SUPPORTED),
        (5, 0.9, 0.03, INCONCLUSIVE),  # too few questions
    ],
)
def test_f6_per_question_follows_hase_et_al(n, rho, p, verdict):
    loc = {
        "kind": "hidden",
        "n_questions": n,
        "within_layer_rho": rho,
        "p_within_layer": p,
        "n_layers_used": 5,
        "mean_rho": 0.7,  # the per-question rho over layers is descriptive only
        "p_rho_positive": 1e-3,
        "same_best_layer": 0.5,
    }
    ev = Evidence({"m": "mllm"}, editing={"m": {"sweep": {"localisation": loc}}})
    (row,) = editing.localisation(ev, RULES)
    assert row.verdict == verdict, row.reason
    assert row.numbers["within_layer_rho"] == rho
    nothing = Evidence({"m": "mllm"}, editing={"m": {"sweep": {"localisation": None}}})
    assert editing.localisation(nothing, RULES)[0].verdict == INCONCLUSIVE


def test_f5_reason_names_the_settings_chosen_on_the_tuning_split():
    e = scenario(100, (0.2, 0.3), 1e-5, 0.99)
    e["tuning"] = {
        "n": 6,
        "chosen": {"multedit": {"clamp": 1.0}, "finetune": {"finetune_lr": 1e-4}},
    }
    ev = Evidence({"m": "mllm"}, editing={"m": {"scenarios": {"long_tail": e}}})
    (row,) = editing.comparison(ev, RULES)
    assert "6 tuning edits" in row.reason and "clamp=1" in row.reason and "lr=0.0001" in row.reason
    assert "finetune_constrained config" in row.reason  # a method without a grid: its config


def test_validation_rows_follow_the_controls():
    ev = Evidence(
        {},
        validation={
            "models": {
                "pos": {"control": "positive", "passed": 9, "total": 10, "failed": ["tracing: x"]},
                "neg": {"control": "negative", "fired": [], "total": 4},
            }
        },
    )
    verdicts = {r.model: r.verdict for r in controls.rows(ev, RULES)}
    assert verdicts == {"neg": SUPPORTED, "pos": NOT_SUPPORTED}


def test_every_row_has_a_verdict_a_rule_and_a_reason():
    ev = Evidence({"m": "mllm", "l": "llm"}, trace={"m": traced("single", {"mlp": [peak_at(1)]})})
    rows = decide(ev, RULES)
    assert {r.claim for r in rows} >= {
        "F1",
        "F1-LLM",
        "F2",
        "F2-window",
        "F1-LLM-window",
        "F3",
        "F3-layer",
        "F3b",
        "F4",
        "Ablation",
        "F3-content",
        "F6",
    }
    for r in rows:
        assert r.verdict in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
        assert r.rule and r.reason and r.statement


@pytest.mark.parametrize(
    ("drops", "p_first", "verdict"),
    [
        ([0.5, 0.1, 0.0], 1e-4, SUPPORTED),
        ([0.1, 0.5, 0.0], 1e-4, NOT_SUPPORTED),  # transfer happens later
        ([0.5, 0.1, 0.0], 0.3, NOT_SUPPORTED),  # not significant
    ],
)
def test_f3_layer_first_layer_blocking_hurts_most(drops, p_first, verdict):
    curve = {"n": 50, "drop_p_answer": drops, "p_holm_drop_positive": [p_first, 0.5, 0.5]}
    ev = Evidence({"m": "mllm"}, ablation={"m": {"splits": {"all": {"per_layer": curve}}}})
    (row,) = transfer.transfer_layer(ev, RULES)
    assert row.verdict == verdict, row.reason


def test_ablation_is_judged_below_k_equal_all_tokens():
    """At k = all visual tokens top, random and bottom are the same set: the rule reads the
    largest k below it."""
    way = {
        "k": [1, 8, 16],
        "n_visual": 16,
        "top": {"drop_p_answer": [0.0, 0.3, 0.6]},
        "random": {"drop_p_answer": [0.0, 0.1, 0.6]},
        "p_value_top_vs_random": [0.5, 1e-4, 1.0],
    }
    ev = Evidence({"m": "mllm"}, ablation={"m": {"splits": {"all": {"n": 50, "block": way}}}})
    (row,) = transfer.ablation(ev, RULES)
    assert row.verdict == SUPPORTED and "k=8" in row.reason


@pytest.mark.parametrize(
    ("mask_drop", "p_mask_over_top", "p_top_over_random", "verdict"),
    [
        (0.2, 0.9, 1e-4, SUPPORTED),  # Eq. 1's top k matter at least as much as the object's
        (0.7, 1e-4, 1e-4, NOT_SUPPORTED),  # the object's patches matter more: Eq. 1 missed them
        (0.7, 0.2, 1e-4, SUPPORTED),  # larger but not significantly
        # nothing matters (a negative control): the two knockouts "agree" only by both doing
        # nothing, which the rule must not call support
        (0.2, 0.9, 0.5, NOT_SUPPORTED),
    ],
)
def test_f3_content_compares_eq1_with_the_object_mask(
    mask_drop, p_mask_over_top, p_top_over_random, verdict
):
    way = {
        "k": [1, 8, 16],
        "n_visual": 16,
        "top": {"drop_p_answer": [0.0, 0.3, 0.6]},
        "random": {"drop_p_answer": [0.0, 0.1, 0.6]},
        "mask": {"drop_p_answer": [0.0, mask_drop, 0.6]},
        "p_value_mask_vs_top": [1.0, p_mask_over_top, 1.0],
        "p_value_top_vs_random": [1.0, p_top_over_random, 1.0],
        "mask_overlap": [0.0, 0.25, 1.0],
    }
    ev = Evidence({"m": "mllm"}, ablation={"m": {"splits": {"all": {"n": 50, "mean": way}}}})
    (row,) = transfer.content(ev, RULES)
    assert row.verdict == verdict and "k=8" in row.reason
    assert row.numbers["mean/mask_overlap"] == 0.25
    without = Evidence({"m": "mllm"}, ablation={"m": {"splits": {"all": {"n": 50}}}})
    assert transfer.content(without, RULES)[0].verdict == INCONCLUSIVE


def f3_evidence(spread_hi: float, p: float) -> Evidence:
    visual = {
        "concentration": {"mean": 0.3, "ci95": [0.28, 0.32], "uniform": 0.0625},
        "spread": {"mass": 0.5, "mean": spread_hi - 0.02, "ci95": [spread_hi - 0.04, spread_hi]},
        "consistency": {"overlap": 0.3, "baseline_mean": 0.06, "p_value": p},
    }
    visual["concentration"]["ratio_to_uniform"] = 0.3 / 0.0625
    return Evidence({"m": "mllm"}, attention={"m": {"splits": {"known": {"visual": visual}}}})


@pytest.mark.parametrize(
    ("spread_hi", "p", "verdict"),
    [(0.2, 0.001, SUPPORTED), (0.3, 0.001, NOT_SUPPORTED), (0.2, 0.2, NOT_SUPPORTED)],
)
def test_f3_needs_a_small_spread_and_a_consistent_subset(spread_hi, p, verdict):
    (row,) = transfer.concentration(f3_evidence(spread_hi, p), RULES)
    assert row.verdict == verdict, row.reason


def test_f3_spread_is_not_fooled_by_a_top_share_above_uniform():
    """A near-uniform vector, as random weights give (top-1 share 0.071 of 16 tokens, above the
    uniform 0.0625), spreads half its mass over nearly half the tokens: far above the rule's
    quarter. One dominant token, or four planted ones, pass."""
    from mmtrace.transfer.visual import concentration, spread

    rng = np.random.default_rng(0)
    near_uniform = 1.0 + 0.1 * rng.random(16)
    assert concentration(near_uniform, 0.05) > 1 / 16
    assert spread(near_uniform) >= 0.4
    assert spread(np.ones(16)) == 0.5
    assert spread(np.array([10.0] + [0.1] * 15)) == 1 / 16
    assert spread(np.array([1.0] * 4 + [0.0] * 12)) == 2 / 16
