"""Editing scenarios on a tiny trained toy MLLM: every edit undone bit for bit, the metrics'
questions chosen as documented, the summary and its paired tests, Figs. 6/14, the LaTeX table,
and `mmtrace edit` (with --save, reloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtrace.cli import main
from mmtrace.config import Editing, Prompts
from mmtrace.dataset import load_questions
from mmtrace.editing import study as E
from mmtrace.models.loading import load, load_image
from mmtrace.models.scoring import first_answer_token, next_token_probs
from mmtrace.prompts import build
from mmtrace.report import editing as R
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
    ec = E.cases("error_correction", records, scores)
    assert ec and all(not scores[r.qid]["correct"] and not r.held_out for r in ec)
    lt = E.cases("long_tail", records, scores)
    assert lt and all(r.held_out and r.constraint_type == "single" for r in lt)
    with pytest.raises(ValueError, match="scenario"):
        E.cases("nonsense", records, scores)


def test_run_edits_undo_and_summary(loaded, records, tiny_world, tmp_path):
    cfg = Editing(layer=0, steps=4, lr=0.5, finetune_steps=4, unrelated=6, sweep_edits=2)
    weights = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    targets = E.cases("long_tail", records, {})[:3]
    out = E.run_edits(loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, seed=3)
    for n, p in loaded.model.named_parameters():  # every edit was undone, bit for bit
        assert torch.equal(p, weights[n]), n
    assert len(out["records"]) == 3
    for rec, row in zip(targets, out["records"], strict=True):
        assert row["qid"] == rec.qid and row["target"] == rec.answer
        assert row["n_paraphrases"] == len(rec.paraphrases)
        siblings = [r for r in records if r.entity_id == rec.entity_id and r.qid != rec.qid]
        assert row["n_same_image"] == len(siblings)
        assert row["n_unrelated"] == 6  # held-out entities are never in the unrelated sample
        assert set(row["methods"]) == set(E.METHODS)
        for values in [row["unedited"], *row["methods"].values()]:
            for m in E.METRICS:
                assert values[m] is None or 0 <= values[m] <= 1
        ft = row["methods"]["finetune_constrained"]["info"]
        assert ft["max_abs_change"] <= cfg.finetune_norm + 1e-7
    again = E.run_edits(loaded, "long_tail", targets, records, Prompts(), tiny_world, cfg, seed=3)
    assert again == out  # deterministic

    ec = E.cases("error_correction", records, {r.qid: {"correct": False} for r in records})[:2]
    sweep = E.sweeps(loaded, ec, Prompts(), tiny_world, cfg, [0, 1], seed=3)
    assert set(sweep["by_layer"]) == {"0", "1"} and len(sweep["by_clamp"]) == len(cfg.clamp_sweep)
    shards = [{"model": "m", "shard": 0, **out}]
    summary = E.summarise_edits(shards, cfg)
    s = summary["m"]["scenarios"]["long_tail"]
    assert s["n"] == 3
    eff = [r["methods"]["multedit"]["efficacy"] for r in out["records"]]
    assert s["multedit"]["efficacy"]["mean"] == pytest.approx(np.mean(eff))
    for base in ("finetune", "finetune_constrained"):
        assert 0 <= s["multedit_vs"][base]["efficacy"]["p_value"] <= 1
    assert set(s["targets"]) >= {"efficacy>=0.9", "generalisation>=0.7", "specificity_drop"}
    assert 0 <= s["multedit_diagnostics"]["share_delta_at_clamp"] <= 1
    summary["m"]["sweep"] = E.summarise_sweep(sweep)

    tex = render_editing(summary)
    assert "\\toprule" in tex and "MultEdit" in tex and "FT-L" in tex and "long tail" in tex
    trace = {
        "m": {
            "known": {
                "traces": {
                    "single": {"mlp": {"window_3": {"window": 3, "peak_layer_at_constraint": 1}}}
                }
            }
        }
    }
    assert R.causal_layers(trace, "m") == {"known": 1}
    for draw in (
        lambda stem: R.fig_methods(summary, "m", stem),
        lambda stem: R.fig_layers(summary, trace, "m", stem),
    ):
        a, b = draw(tmp_path / "a"), draw(tmp_path / "b")
        for p, q in zip(a, b, strict=True):
            assert p.read_bytes() == q.read_bytes() and p.stat().st_size > 1000


def test_cli_edit_and_save(trained, records, tiny_world, tmp_path, capsys):
    rec = next(r for r in records if r.held_out)
    span = rec.visual_span
    save = tmp_path / "edited"
    argv = [
        "edit",
        "--model",
        str(trained["mm-llama"]),
        "--image",
        str(tiny_world / rec.image_url),
        "--question",
        rec.question,
        "--constraint",
        rec.question[span.start : span.end],
        "--target",
        rec.answer,
        "--layer",
        "0",
        "--steps",
        "30",
        "--lr",
        "1.0",
        "--clamp",
        "50",
        "--save",
        str(save),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    before, after = (float(x) for x in out.split(": ", 1)[1].split(" (")[0].split(" -> "))
    assert (save / "model.safetensors").exists()
    edited = load(save, "mllm")
    original = load(trained["mm-llama"], "mllm")
    # the saved model answers as the edited one did, the original as before the edit
    prompt = build(Prompts().mllm, rec.question).text
    image = load_image(tiny_world / rec.image_url)
    target = first_answer_token(original.tokenizer, prompt, rec.answer)
    for model, want in ((edited, after), (original, before)):
        p = float(next_token_probs(model, [prompt], [image])[0, target])
        assert p == pytest.approx(want, abs=6e-5)
    diff = [
        n
        for (n, p), (_, q) in zip(
            edited.model.named_parameters(), original.model.named_parameters(), strict=True
        )
        if not torch.equal(p, q)
    ]
    assert len(diff) == 1 and diff[0].endswith("layers.0.mlp.down_proj.weight")
    with pytest.raises(SystemExit, match="not part of the question"):
        main([*argv[:7], "--constraint", "no such words", *argv[9:]])
