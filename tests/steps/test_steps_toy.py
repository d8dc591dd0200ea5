"""The workflow's steps called directly, with the keywords their rules bind: each stage's files
on the tiny toy world and tiny trained models (see tests/conftest.py)."""

from __future__ import annotations

import json

import pytest

from mmtrace.config import Attention, Editing, Tracing
from mmtrace.dataset import load_questions
from mmtrace.io import read_json
from mmtrace.steps import editing, evaluate, figures, tables, trace, transfer, world

SPLITS = ("known", "movies", "okvqa")
SPEC = {"role": "mllm"}


def test_toy_world_step_writes_the_world(tmp_path):
    world.toy_world(
        world=tmp_path / "world.json",
        seed=3,
        settings=dict(n_known=10, n_movies=5, n_okvqa=10, n_heldout=2, train_images_per_entity=1),
    )
    assert read_json(tmp_path / "world.json")["entities"]
    for split in (*SPLITS, "heldout"):
        assert (tmp_path / f"{split}.csv").stat().st_size > 0


@pytest.fixture(scope="module")
def scored(trained, tiny_world, tmp_path_factory):
    """evaluate_model and model_accuracy on the tiny MLLM: the scores every analysis reads."""
    out = tmp_path_factory.mktemp("steps")
    evaluate.evaluate_model(
        model="mm-llama",
        checkpoint=trained["mm-llama"] / "training_log.json",
        spec=SPEC,
        csvs=[tiny_world / f"{s}.csv" for s in SPLITS],
        human=[],
        prompts={},
        batch_size=16,
        threads=1,
        scores=out / "scores.jsonl",
        summary=out / "mm-llama.json",
    )
    evaluate.model_accuracy(summaries=[out / "mm-llama.json"], accuracy=out / "accuracy.json")
    return out


def test_evaluation_steps(scored, tiny_world):
    rows = [json.loads(line) for line in (scored / "scores.jsonl").read_text().splitlines()]
    n = len(load_questions([tiny_world / f"{s}.csv" for s in SPLITS]))
    assert len(rows) == n and {"qid", "correct", "p_answer"} <= set(rows[0])
    accuracy = read_json(scored / "accuracy.json")
    assert accuracy["mm-llama"]["role"] == "mllm"
    tables.table_model_accuracy(accuracy=scored / "accuracy.json", table=scored / "acc.tex")
    assert "toprule" in (scored / "acc.tex").read_text()


def test_trace_steps(scored, trained, tiny_world):
    settings = Tracing(windows=[1], multi_window=1, only_correct=False, min_drop=None)
    settings = settings.model_copy(update={"max_questions": 3, "shards": 2})
    for shard in (0, 1):
        trace.trace_shard(
            model="mm-llama",
            checkpoint=trained["mm-llama"] / "training_log.json",
            spec=SPEC,
            csvs=[tiny_world / "known.csv", tiny_world / "movies.csv"],
            pool=[tiny_world / f"{s}.csv" for s in (*SPLITS, "heldout")],
            scores=scored / "scores.jsonl",
            prompts={},
            tracing=settings.model_dump(),
            seed=0,
            shard=shard,
            threads=1,
            trace=[scored / f"trace{shard}.json", scored / f"movies_trace{shard}.json"],
        )
    # one job, one model load, one output per split
    movies = [read_json(scored / f"movies_trace{i}.json") for i in (0, 1)]
    assert {m["split"] for m in movies} == {"movies"}
    assert len({t["qid"] for m in movies for t in m["traces"]}) == 3  # max_questions, per split
    shards = [scored / "trace0.json", scored / "trace1.json"]
    qids = [{t["qid"] for t in read_json(p)["traces"]} for p in shards]
    assert len(qids[0]) == 2 and len(qids[1]) == 1 and not qids[0] & qids[1]
    trace.trace_summary(shards=shards, summary=scored / "trace_summary.json")
    traces = [t for p in shards for t in read_json(p)["traces"]]
    # natural corruption; the tiny world's names are too long for an exact fit (the default
    # world's are tested in tests/tracing/test_natural_corruption.py)
    assert {t["corruption_fit"] for t in traces} <= {"exact", "cut", "padded"}
    assert all(t["replacement"] for t in traces)
    assert all(len(t["ie_embedding"]) == len(t["positions"]) for t in traces)
    swaps = [t["image_swap"] for t in traces if "image_swap" in t]
    assert swaps and all(s["image_of"] != t["qid"] for t, s in zip(traces, swaps, strict=False))
    entry = read_json(scored / "trace_summary.json")["mm-llama"]["known"]
    assert entry["traces"]["single"]["mlp"]["window_1"]["n_traced"] == 3
    pdfs = {"single": [scored / "avg.pdf"], "multi": scored / "multi.pdf"}
    trace.fig_trace_mllm(
        shards=shards,
        model="mm-llama",
        windows=[1],
        multi_window=1,
        kinds=["mlp"],
        example_window=1,
        example_kinds=["mlp", "attn"],
        k=1,
        examples=scored / "examples.pdf",
        **pdfs,
    )
    for pdf in (scored / "avg.pdf", scored / "multi.pdf", scored / "examples.pdf"):
        assert pdf.stat().st_size > 0 and pdf.with_suffix(".png").stat().st_size > 0


def test_transfer_steps(scored, trained, tiny_world):
    attention = Attention(max_questions=4, n_perm=20, n_boot=20).model_dump()
    transfer.attention_shard(
        model="mm-llama",
        checkpoint=trained["mm-llama"] / "training_log.json",
        spec=SPEC,
        csvs=[tiny_world / "known.csv"],
        scores=scored / "scores.jsonl",
        prompts={},
        attention=attention,
        shard=0,
        threads=1,
        contributions=[scored / "attention.json"],
    )
    assert len(read_json(scored / "attention.json")["records"]) == 4
    transfer.attention_summary(
        shards=[scored / "attention.json"], attention=attention, seed=0, summary=scored / "a.json"
    )
    assert read_json(scored / "a.json")["mm-llama"]["splits"]["known"]["n"] == 4


def test_the_hard_split_is_scored_apart_and_read_by_f3b_f4(trained, tiny_world, tmp_path):
    """The tiny world again (same seed and sizes) with a hard split: the evaluation scores it
    but keeps it out of the accuracy table's splits, and the attention job's hard shard makes
    it the split F3b/F4 read (docs/method.md §5)."""
    n_hard = 8
    sizes = dict(n_known=20, n_movies=10, n_okvqa=15, n_heldout=4, train_images_per_entity=2)
    world.toy_world(
        world=tmp_path / "world.json", seed=7, settings={**sizes, "hard": {"n": n_hard}}
    )
    for split in SPLITS:  # the world the tiny models were trained on (tests/conftest.py)
        assert (tmp_path / f"{split}.csv").read_text() == (tiny_world / f"{split}.csv").read_text()
    csvs = [tmp_path / f"{s}.csv" for s in (*SPLITS, "hard")]
    job = dict(model="mm-llama", checkpoint=trained["mm-llama"] / "training_log.json", spec=SPEC)
    evaluate.evaluate_model(
        **job,
        csvs=csvs,
        human=[],
        prompts={},
        batch_size=16,
        threads=1,
        scores=tmp_path / "scores.jsonl",
        summary=tmp_path / "mm-llama.json",
    )
    summary = read_json(tmp_path / "mm-llama.json")
    assert set(summary["splits"]) == set(SPLITS) and summary["hard"]["n"] == n_hard
    evaluate.model_accuracy(summaries=[tmp_path / "mm-llama.json"], accuracy=tmp_path / "acc.json")
    tables.table_model_accuracy(accuracy=tmp_path / "acc.json", table=tmp_path / "acc.tex")
    assert "hard" not in (tmp_path / "acc.tex").read_text().lower()

    attention = Attention(max_questions=4, n_perm=20, n_boot=20).model_dump()
    shards = [tmp_path / f"{s}_shard0.json" for s in (*SPLITS, "hard")]
    transfer.attention_shard(
        **job,
        csvs=csvs,
        scores=tmp_path / "scores.jsonl",
        prompts={},
        attention=attention,
        shard=0,
        threads=1,
        contributions=shards,
    )
    assert {r["split"] for r in read_json(shards[-1])["records"]} == {"hard"}
    transfer.attention_summary(
        shards=shards, attention=attention, seed=0, summary=tmp_path / "a.json"
    )
    entry = read_json(tmp_path / "a.json")["mm-llama"]
    assert entry["correctness_split"] == "hard" and entry["splits"]["hard"]["n"] == 4
    assert entry["splits"]["all"]["n"] == 4 * len(SPLITS)


def test_editing_steps(scored, trained, tiny_world):
    settings = Editing(
        layer=0,
        steps=2,
        finetune_steps=2,
        max_edits=1,
        unrelated=4,
        sweep_edits=1,
        sweep_layers=[0],
        scenarios=["long_tail"],
        sweep_scenario="long_tail",
        tuning={
            "edits": 1,
            "multedit": [{"clamp": 1.0}, {"clamp": 4.0}],
            "finetune": [{"finetune_lr": 0.001}],
            "finetune_constrained": [{"finetune_norm": 0.001}],
        },
    )
    common = {
        "model": "mm-llama",
        "checkpoint": trained["mm-llama"] / "training_log.json",
        "spec": SPEC,
        "csvs": [tiny_world / f"{s}.csv" for s in (*SPLITS, "heldout")],
        "scores": scored / "scores.jsonl",
        "prompts": {},
        "editing": settings.model_dump(),
        "seed": 0,
        "threads": 1,
    }
    editing.edit_sweep(**common, tracing={}, sweep=scored / "sweep.json")
    set_apart = read_json(scored / "sweep.json")["tuning"]["long_tail"]["qids"]
    assert len(set_apart) == 1
    editing.edit_shard(
        **common,
        sweep=scored / "sweep.json",
        scenario="long_tail",
        shard=0,
        edits=scored / "edits.json",
    )
    (row,) = read_json(scored / "edits.json")["records"]
    assert row["qid"] not in set_apart  # the held-out edits never include a tuning case
    assert set(row["methods"]) == {"multedit", "finetune", "finetune_constrained"}
    editing.edit_summary(
        shards=[scored / "edits.json"],
        sweeps=[scored / "sweep.json"],
        editing=settings.model_dump(),
        summary=scored / "edit_summary.json",
    )
    summary = read_json(scored / "edit_summary.json")["mm-llama"]["scenarios"]["long_tail"]
    assert summary["tuning"]["qids"] == set_apart and summary["settings"]
    loc = read_json(scored / "edit_summary.json")["mm-llama"]["sweep"]["localisation"]
    assert loc["n_questions"] == 1  # the one swept question, traced at the edit site
    editing.table_editing(summary=scored / "edit_summary.json", table=scored / "edit.tex")
    assert "MultEdit" in (scored / "edit.tex").read_text()


def test_figure_and_table_steps_of_the_world(tiny_world, tmp_path):
    csvs = [tiny_world / f"{s}.csv" for s in (*SPLITS, "heldout")]
    tables.table_dataset_stats(csvs=csvs, table=tmp_path / "stats.tex")
    assert "toprule" in (tmp_path / "stats.tex").read_text()
    figures.toy_world_examples(
        csvs=csvs, images=tiny_world / "images", seed=0, pdf=tmp_path / "e.pdf"
    )
    assert (tmp_path / "e.png").stat().st_size > 0
