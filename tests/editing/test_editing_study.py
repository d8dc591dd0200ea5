"""Editing scenarios on a tiny trained toy MLLM: every edit undone bit for bit, the metrics'
questions chosen as documented, the summary and its paired tests, Figs. 6/14, the LaTeX table,
and `mmtrace edit` (with --save, reloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtrace.config import Editing, Prompts
from mmtrace.dataset import load_questions
from mmtrace.editing import layer_sweep, study
from mmtrace.editing import tuning as tuning_
from mmtrace.models.loading import load
from mmtrace.report import editing as editing_report
from mmtrace.report.tables import render_editing

SPLITS = ("known", "movies", "okvqa", "heldout")


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in SPLITS])


@pytest.fixture(scope="module")
def loaded(trained):
    return load(trained["mm-llama"], "mllm", name="mm-llama")


def test_cases(records):
    scores = {r.qid: {"correct": i % 3 == 0} for i, r in enumerate(records) if not r.held_out}
    ec = study.cases("error_correction", records, scores)
    assert ec and all(not scores[r.qid]["correct"] and not r.held_out for r in ec)
    lt = study.cases("long_tail", records, scores)
    assert lt and all(r.held_out and r.constraint_type == "single" for r in lt)
    with pytest.raises(ValueError, match="scenario"):
        study.cases("nonsense", records, scores)


def test_run_edits_undo_and_summary(loaded, records, tiny_world, tmp_path):
    cfg = Editing(
        layer=0, steps=4, lr=0.5, finetune_steps=4, unrelated=6, sweep_edits=2, neighbours=3
    )
    weights = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    targets = study.cases("long_tail", records, {})[:3]
    out = study.run_edits(loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, seed=3)
    for n, p in loaded.model.named_parameters():  # every edit was undone, bit for bit
        assert torch.equal(p, weights[n]), n
    assert len(out["records"]) == 3
    for rec, row in zip(targets, out["records"], strict=True):
        assert row["qid"] == rec.qid and row["target"] == rec.answer
        assert row["n_paraphrases"] == len(rec.paraphrases)
        siblings = [r for r in records if r.entity_id == rec.entity_id and r.qid != rec.qid]
        assert row["n_same_image"] == len(siblings)
        assert row["n_renderings"] == min(len(siblings), cfg.renderings)
        neighbours = study.neighbours_of(rec, records, cfg.neighbours, seed=3)
        assert row["n_neighbours"] == len(neighbours) <= cfg.neighbours
        assert all(n.question == rec.question and n.entity_id != rec.entity_id for n in neighbours)
        assert row["n_unrelated"] == 6  # held-out entities are never in the unrelated sample
        assert set(row["methods"]) == set(study.METHODS)
        for values in [row["unedited"], *row["methods"].values()]:
            for m in study.METRICS:
                assert values[m] is None or 0 <= values[m] <= 1
        ft = row["methods"]["finetune_constrained"]["info"]
        assert ft["max_abs_change"] <= cfg.finetune_norm + 1e-7
    again = study.run_edits(
        loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, seed=3
    )
    assert again == out  # deterministic

    ec = study.cases("error_correction", records, {r.qid: {"correct": False} for r in records})[:2]
    sweep = layer_sweep.sweeps(loaded, ec, Prompts(), tiny_world, cfg, [0, 1], seed=3)
    assert set(sweep["by_layer"]) == {"0", "1"} and len(sweep["by_layer"]["0"]["efficacy"]) == 2
    tuning = tuning_.tune(loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, seed=3)
    assert len(tuning["qids"]) == 1  # min(edits, half of the 3 cases)
    for method, front in tuning["front"].items():
        assert len(front["points"]) == len(cfg.tuning.grid(method))
        assert tuning["chosen"][method] == cfg.tuning.grid(method)[front["chosen"]]
    shards = [{"model": "m", "shard": 0, "settings": tuning["chosen"], **out}]
    summary = study.summarise_edits(shards, cfg)
    s = summary["m"]["scenarios"]["long_tail"]
    assert s["n"] == 3
    eff = [r["methods"]["multedit"]["efficacy"] for r in out["records"]]
    assert s["multedit"]["efficacy"]["mean"] == pytest.approx(np.mean(eff))
    for base in ("finetune", "finetune_constrained"):
        assert 0 <= s["multedit_vs"][base]["efficacy"]["p_value"] <= 1
    assert set(s["targets"]) >= {"efficacy>=0.9", "generalisation>=0.7", "specificity_drop"}
    assert 0 <= s["multedit_diagnostics"]["share_delta_at_clamp"] <= 1
    summary["m"]["sweep"] = layer_sweep.summarise_sweep(sweep)
    s["tuning"] = tuning_.summarise_tuning(tuning)
    assert s["settings"] == tuning["chosen"]

    tex = render_editing(summary)
    assert "\\toprule" in tex and "MultEdit" in tex and "FT-L" in tex and "long tail" in tex
    assert "clamp=" in tex and "bound=" in tex  # each method's chosen setting
    trace = {
        "m": {
            "known": {
                "traces": {
                    "single": {"mlp": {"window_3": {"window": 3, "peak_layer_at_constraint": 1}}}
                }
            }
        }
    }
    assert editing_report.causal_layers(trace, "m") == {"known": 1}
    for draw in (
        lambda stem: editing_report.fig_methods(summary, "m", stem),
        lambda stem: editing_report.fig_layers(summary, trace, "m", stem),
        lambda stem: editing_report.fig_fronts(summary, "m", stem),
    ):
        a, b = draw(tmp_path / "a"), draw(tmp_path / "b")
        for p, q in zip(a, b, strict=True):
            assert p.read_bytes() == q.read_bytes() and p.stat().st_size > 1000


def test_a_variant_is_multedit_at_its_own_setting_and_is_summarised_apart(
    loaded, records, tiny_world
):
    """`editing.variants`: recorded as `multedit@<name>`, equal to MultEdit run with those
    settings as its own, and summarised with its settings beside the three methods."""
    cfg = Editing(
        layer=0,
        steps=3,
        lr=0.5,
        finetune_steps=2,
        unrelated=4,
        neighbours=2,
        variants={"small": {"lr": 0.05, "steps": 2}},
    )
    targets = study.cases("long_tail", records, {})[:2]
    methods = study.tuned_methods(cfg, {})
    assert list(methods) == [*study.METHODS, "multedit@small"]
    out = study.run_edits(
        loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, 3, methods
    )
    alone = Editing(**{**cfg.model_dump(), "lr": 0.05, "steps": 2, "variants": {}})
    direct = study.run_edits(
        loaded,
        "long_tail",
        targets,
        records,
        Prompts(),
        tiny_world,
        alone,
        3,
        {"multedit": study.method_table(alone)["multedit"]},
    )
    for row, ref in zip(out["records"], direct["records"], strict=True):
        assert row["methods"]["multedit@small"] == ref["methods"]["multedit"]
        assert row["methods"]["multedit@small"]["info"]["p_target_by_step"].__len__() == 3
        assert row["methods"]["multedit"] != ref["methods"]["multedit"]  # lr 0.5, 3 steps
    shards = [
        {"model": "m", "shard": 0, "settings": {}, "variants": cfg.variants, **out},
        {"model": "z", "shard": 0, "settings": {}, **direct},  # a model without variants
    ]
    summary = study.summarise_edits(shards, cfg)
    s = summary["m"]["scenarios"]["long_tail"]
    assert s["variants"] == {"small": {"lr": 0.05, "steps": 2}}
    assert s["multedit@small"]["n"] == 2
    assert "variants" not in summary["z"]["scenarios"]["long_tail"]
    assert set(s["multedit_vs"]) == {"finetune", "finetune_constrained"}  # no test of variants
