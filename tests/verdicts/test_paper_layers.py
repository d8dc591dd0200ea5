"""The paper's own numbers pass its own claims: the layers it reports for F1, F1-LLM, F2 and F3b
(`mmtrace.verdicts.paper`), fed to the rules on a 32-layer model, are `supported`; the same
rules on layers outside those bands are not, so the bands are not simply wide."""

from __future__ import annotations

import pytest

from mmtrace.config import Claims
from mmtrace.verdicts import storage, transfer
from mmtrace.verdicts.claims import NOT_SUPPORTED, SUPPORTED
from mmtrace.verdicts.evidence import Evidence, band
from mmtrace.verdicts.paper import EARLY_UNTIL, MIDDLE_UNTIL, N_LAYERS, REPORTED

RULES = Claims()
SIG, NS = 1e-6, 0.5


def test_config_bands_are_the_papers():
    assert RULES.early_until == pytest.approx(EARLY_UNTIL)
    assert RULES.middle_until == pytest.approx(MIDDLE_UNTIL)


def trace(causal: list[int], peak: int, window: int = 1) -> dict:
    means = [0.01] * N_LAYERS
    p = [NS] * N_LAYERS
    for layer in causal:
        means[layer], p[layer] = 0.2, SIG
    means[peak] = 0.4
    return {
        "window": window,
        "n_traced": 100,
        "mean_ie_at_constraint_by_layer": means,
        "p_holm_ie_positive_by_layer": p,
    }


def traced(setting: str, kinds: dict) -> dict:
    return {
        "known": {"traces": {setting: {k: {f"window_{e['window']}": e} for k, e in kinds.items()}}}
    }


def rule(claim: str, ev: Evidence) -> str:
    (row,) = [r for r in storage.rows(ev, RULES) if r.claim == claim]
    return row.verdict


@pytest.mark.parametrize("peak", REPORTED["F1"]["layers"])
def test_f1_the_papers_early_layers_pass(peak):
    layers = REPORTED["F1"]["layers"]
    t = traced("single", {"mlp": trace(layers, peak), "attn": trace(layers, peak)})
    assert rule("F1", Evidence({"llava": "mllm"}, trace={"llava": t})) == SUPPORTED
    late = traced("single", {"mlp": trace([12], 12), "attn": trace([12], 12)})
    assert rule("F1", Evidence({"llava": "mllm"}, trace={"llava": late})) == NOT_SUPPORTED


@pytest.mark.parametrize("peak", [5, 6, 7])
def test_f1_llm_the_papers_middle_layers_pass(peak):
    """The paper's 4-7: layer 4 is also the end of F1's early range, so the bands put it in
    early; a peak at 5, 6 or 7 is middle."""
    t = traced("llm", {"mlp": trace(REPORTED["F1-LLM"]["layers"], peak, window=5)})
    assert rule("F1-LLM", Evidence({"vicuna": "llm"}, trace={"vicuna": t})) == SUPPORTED
    assert band(4, N_LAYERS, RULES) == "early"
    early = traced("llm", {"mlp": trace([1, 2], 1, window=5)})
    assert rule("F1-LLM", Evidence({"vicuna": "llm"}, trace={"vicuna": early})) == NOT_SUPPORTED


def test_f2_the_papers_early_and_middle_layers_pass():
    layers = REPORTED["F2"]["layers"]
    t = traced("multi", {"mlp": trace(layers, layers[0], 6), "attn": trace(layers, layers[0], 6)})
    assert rule("F2", Evidence({"llava": "mllm"}, trace={"llava": t})) == SUPPORTED
    only_early = traced("multi", {"mlp": trace([2], 2, 6), "attn": trace([2], 2, 6)})
    assert rule("F2", Evidence({"llava": "mllm"}, trace={"llava": only_early})) == NOT_SUPPORTED


@pytest.mark.parametrize(
    ("layers", "verdict"), [(REPORTED["F3b"]["layers"], SUPPORTED), ([28], NOT_SUPPORTED)]
)
def test_f3b_the_papers_mid_layers_pass(layers, verdict):
    p = [0.5] * N_LAYERS
    correct = [0.5] * N_LAYERS
    for layer in layers:
        p[layer], correct[layer] = 1e-6, 1.0
    summary = {
        "splits": {
            "all": {
                "constraint_to_last": {
                    "correct": {"mean": correct, "n": 500},
                    "incorrect": {"mean": [0.5] * N_LAYERS, "n": 400},
                    "p_value": p,
                }
            }
        }
    }
    ev = Evidence({"llava": "mllm"}, attention={"llava": summary})
    (row,) = transfer.separation(ev, RULES)
    assert row.verdict == verdict, row.reason
