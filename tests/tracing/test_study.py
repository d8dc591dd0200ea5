"""Tracing questions of a split, the per-question record, the summary, and `mmtrace trace` on a
toy checkpoint and on a tiny random Hugging Face LLaVA saved with `save_pretrained`."""

from __future__ import annotations

import numpy as np
import pytest
from support.expectations import TRACE_RECORD_KEYS

from mmtrace.config import Prompts, Tracing
from mmtrace.dataset import load_questions
from mmtrace.models.loading import load
from mmtrace.tracing import study


@pytest.fixture(scope="module")
def known(tiny_world):
    return load_questions([tiny_world / "known.csv"])


@pytest.mark.parametrize("name", ["mm-llama", "mm-phi", "llama"])
def test_trace_records_and_summary(trained, tiny_world, known, name):
    loaded = load(trained[name], "llm" if name == "llama" else "mllm", name=name)
    cfg = Tracing(windows=[1, 2], multi_window=2, llm_window=2, min_drop=None)
    records = known[:6]
    correct = {r.qid: i != 0 for i, r in enumerate(records)}  # the first counts as wrong
    out = study.trace_records(loaded, records, correct, Prompts(), tiny_world, cfg, seed=0)
    assert out["excluded"].get("answered incorrectly") == 1
    traced = out["traces"]
    assert len({t["qid"] for t in traced}) == len(records) - 1
    n_layers = len(traced[0]["layers"])
    for t in traced:
        assert set(t) >= TRACE_RECORD_KEYS
        assert len(t["input_ids"]) == len(t["corrupted_input_ids"])
        assert len(t["tokens"]) == len(t["roles"]) == len(t["positions"])
        for kind in cfg.kinds:
            ie = np.asarray(t["ie"][kind])
            assert ie.shape == (len(t["positions"]), n_layers)
            # positions before the corrupted constraint cannot be affected by restoring them
            before = [i for i, r in enumerate(t["roles"]) if r in ("last_image", "before")]
            assert np.abs(ie[before]).max(initial=0.0) <= 1e-6
        expected = {"single": [1, 2], "multi": [2], "llm": [2]}[t["setting"]]
        assert t["window"] in expected
    # the window sweep (every window 1..L at the constraint's tokens) agrees with the full
    # trace's windows, averaged over the constraint's rows
    by_window = {(t["qid"], t["window"]): t for t in traced}
    swept = [t for t in traced if "window_sweep" in t]
    assert len(swept) == len(records) - 1
    for t in swept:
        sw = t["window_sweep"]
        assert sw["windows"] == list(range(1, n_layers + 1))
        for i, w in enumerate(sw["windows"]):
            if (t["qid"], w) not in by_window:
                continue
            for kind in cfg.kinds:
                full = study.constraint_curve(by_window[(t["qid"], w)], kind)
                np.testing.assert_allclose(sw["ie"][kind][i], full, atol=1e-6)
    summary = study.summarise([{"model": name, "split": "known", **out}])
    entry = summary[name]["known"]
    for setting, sweep in entry["window_sweep"].items():
        assert sweep["n"] == sum(t["setting"] == setting for t in swept)
        assert len(sweep["kinds"]["mlp"]) == n_layers
    assert entry["n_candidates"] == out["n_candidates"]
    for setting, kinds in entry["traces"].items():
        for windows in kinds.values():
            for w in windows.values():
                assert w["n_traced"] == sum(
                    t["setting"] == setting and t["window"] == w["window"] for t in traced
                )
                assert 0 <= w["peak_layer_at_constraint"] < n_layers


def test_min_drop_excludes_and_counts(trained, tiny_world, known):
    loaded = load(trained["mm-llama"], "mllm")
    cfg = Tracing(windows=[1], min_drop=1.0)  # no corruption can lower p by more than 1
    records = known[:3]
    out = study.trace_records(
        loaded, records, {r.qid: True for r in records}, Prompts(), tiny_world, cfg, seed=0
    )
    assert out["traces"] == []
    assert out["excluded"] == {"corruption drop below min_drop": 3}
