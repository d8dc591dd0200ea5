"""Attention contributions over a split's questions, their summary (Figs. 5, 15-17), the figures
drawn from it, and `mmtrace attention` on toy checkpoints (an MLLM and a text LM)."""

from __future__ import annotations

import numpy as np
import pytest

from mmtrace.config import Attention, Claims, Prompts
from mmtrace.dataset import load_questions
from mmtrace.evaluate import score_questions
from mmtrace.models.encoding import encode_record
from mmtrace.models.loading import load
from mmtrace.report import transfer as transfer_report
from mmtrace.transfer import study
from mmtrace.transfer.contributions import attention_contributions
from mmtrace.transfer.visual import concentration
from mmtrace.verdicts import transfer as verdicts
from mmtrace.verdicts.evidence import Evidence

ANALYSED = ("known", "movies", "okvqa")


@pytest.fixture(scope="module")
def known(tiny_world):
    return load_questions([tiny_world / "known.csv"])


@pytest.mark.parametrize(("name", "role"), [("mm-llama", "mllm"), ("llama", "llm")])
def test_attention_records_match_eq1(trained, tiny_world, known, name, role):
    loaded = load(trained[name], role, name=name)
    records = study.eligible(known, loaded.is_multimodal)[:5]
    scores = {r["qid"]: r for r in score_questions(loaded, records, Prompts(), tiny_world)}
    cfg = Attention(visual_layer=1, reduce="sum")
    out = study.attention_records(loaded, records, scores, Prompts(), tiny_world, cfg)
    assert len(out["records"]) == len(records) and out["excluded"] == {}
    for rec, row in zip(records, out["records"], strict=True):
        assert row["correct"] == scores[rec.qid]["correct"]
        assert row["confidence"] == scores[rec.qid]["confidence"]
        enc = encode_record(loaded, rec, Prompts(), tiny_world)
        last = len(enc.input_ids) - 1
        direct = attention_contributions(loaded.model, enc.inputs, targets=[last]).double()
        want = direct[:, 0, enc.span_positions["visual"]].sum(-1).numpy()
        np.testing.assert_allclose(row["constraint_to_last"], want, rtol=1e-6)
        assert ("visual_to_constraint" in row) == loaded.is_multimodal
        if loaded.is_multimodal:
            vis = attention_contributions(
                loaded.model, enc.inputs, [1], [enc.span_positions["visual"][-1]]
            )
            np.testing.assert_allclose(
                row["visual_to_constraint"], vis[0, 0, enc.image_positions].double().numpy()
            )


def test_confidence_is_the_top_probability(trained, tiny_world, known):
    loaded = load(trained["mm-llama"], "mllm")
    for row in score_questions(loaded, known[:6], Prompts(), tiny_world):
        assert 0 < row["confidence"] <= 1
        if row["correct"]:  # the top-1 token is a gold token, so p_answer includes it
            assert row["confidence"] <= row["p_answer"] + 1e-7
        else:
            assert row["confidence"] >= row["p_answer"] / len(known[0].answers) - 1e-7


def _synthetic_shard(split, n, seed, n_layers=6, n_visual=16):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        correct = bool(rng.random() < 0.7)
        vis = rng.random(n_visual) * 0.1
        vis[[13, 14]] += 1.0  # a consistent top pair
        curve = rng.random(n_layers)
        curve[3] += 1.5 * correct
        rows.append(
            {
                "qid": f"{split}-{i:03d}",
                "split": split,
                "constraint_type": "single",
                "correct": correct,
                "p_answer": float(rng.random()),
                "confidence": float(rng.random()),
                "constraint_to_last": curve.tolist(),
                "visual_to_constraint": vis.tolist(),
            }
        )
    return {"model": "m", "split": split, "shard": 0, "records": rows, "excluded": {"x": 1}}


def test_summarise_attention_on_known_structure(tmp_path):
    shards = [_synthetic_shard("known", 90, 0), _synthetic_shard("okvqa", 80, 1)]
    cfg = Attention(top_share=0.125, n_perm=100, n_boot=100)
    out = study.summarise_attention(shards, cfg, seed=0)
    again = study.summarise_attention(shards, cfg, seed=0)
    assert out == again
    entry = out["m"]
    assert set(entry["splits"]) == {"known", "okvqa", "all"}
    assert entry["splits"]["all"]["n"] == 170
    known = entry["splits"]["known"]
    assert known["excluded"] == {"x": 1}
    v = known["visual"]
    assert v["k"] == 2
    rows = shards[0]["records"]
    want = np.mean([concentration(r["visual_to_constraint"], 0.125) for r in rows])
    assert v["concentration"]["mean"] == pytest.approx(want)
    assert v["consistency"]["overlap"] == pytest.approx(1.0)
    assert v["consistency"]["p_value"] < 0.05
    assert v["top_frequency"][13] == v["top_frequency"][14] == 1.0
    assert sum(v["mean_share"]) == pytest.approx(1.0)
    c = known["constraint_to_last"]
    n_correct = sum(r["correct"] for r in rows)
    assert c["correct"]["n"] == n_correct and c["incorrect"]["n"] == len(rows) - n_correct
    assert c["p_value"][3] < 1e-3
    f = entry["splits"]["all"]["failure_prediction"]
    assert f["layer"] == 3 and f["contribution"]["auroc"] > 0.9
    assert "visual" not in entry["splits"]["all"]


def test_transfer_figures_draw_and_are_deterministic(tmp_path):
    from mmtrace.transfer import ablation

    shards = [_synthetic_shard("known", 60, 2), _synthetic_shard("movies", 12, 3)]
    summary = study.summarise_attention(shards, Attention(n_perm=50, n_boot=50), seed=1)
    abl_rows = []
    for i in range(5):
        entry = {"qid": f"q{i}", "split": "known", "n_visual": 16, "ks": [1, 2, 4]}
        entry.update(p_clean=0.9, correct_clean=True)
        for way in ablation.WAYS:
            entry[way] = {
                r: {"p": [0.9 - 0.1 * j * (r == "top") for j in range(3)], "correct": [1, 1, 0.5]}
                for r in ablation.RANKINGS
            }
        abl_rows.append(entry)
    abl = study.summarise_ablation(
        [
            {
                "model": "m",
                "split": "known",
                "ways": list(ablation.WAYS),
                "block_layers": [0, 1],
                "mean_images": 4,
                "records": abl_rows,
                "excluded": {},
            }
        ]
    )
    g = abl["m"]["splits"]["known"]["block"]
    np.testing.assert_allclose(g["top"]["drop_p_answer"], [0.0, 0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(g["random"]["drop_p_answer"], [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(g["top"]["drop_accuracy"], [0, 0, 0.5])
    assert g["p_value_top_vs_random"][0] == 1.0 and g["p_value_top_vs_random"][2] < 0.05
    for draw, data in (
        (transfer_report.fig_visual, summary),
        (transfer_report.fig_constraint_to_last, summary),
        (transfer_report.fig_failure, summary),
        (transfer_report.fig_ablation, abl),
    ):
        first = draw(data, "m", tmp_path / "a")
        second = draw(data, "m", tmp_path / "b")
        for p, q in zip(first, second, strict=True):
            assert p.read_bytes() == q.read_bytes() and p.stat().st_size > 1000


def _with_errors(shard: dict, share_incorrect: float, seed: int) -> dict:
    """`shard` with a seeded share of its answers made incorrect (the rest correct)."""
    rng = np.random.default_rng(seed)
    for r in shard["records"]:
        r["correct"] = bool(rng.random() >= share_incorrect)
    return shard


def test_f3b_f4_read_the_hard_split_when_it_exists():
    """With a hard split the pooled "all" stays the analysed splits', the hard split gets the
    correct-vs-incorrect statistics but no Fig. 5 statistics, and F3b/F4's rows read it."""
    easy = [_with_errors(_synthetic_shard(s, 60, i), 0.05, i) for i, s in enumerate(ANALYSED)]
    hard = _with_errors(_synthetic_shard("hard", 160, 9), 0.45, 9)
    cfg = Attention(n_perm=50, n_boot=50)
    out = study.summarise_attention([*easy, hard], cfg, seed=0)["m"]
    assert out["correctness_split"] == "hard"
    assert out["splits"]["all"]["n"] == sum(len(s["records"]) for s in easy)
    h = out["splits"]["hard"]
    assert "visual" not in h and "visual" in out["splits"]["known"]
    n_bad = sum(not r["correct"] for r in hard["records"])
    assert (h["n"], h["n_incorrect"], h["n_correct"]) == (160, n_bad, 160 - n_bad)
    assert h["constraint_to_last"]["incorrect"]["n"] == n_bad
    f = h["failure_prediction"]
    assert f["evaluation"]["n_correct"] + f["evaluation"]["n_incorrect"] == f["evaluation"]["n"]

    ev = Evidence({"m": "mllm"}, attention={"m": out})
    (f3b,) = verdicts.separation(ev, Claims())
    (f4,) = verdicts.prediction(ev, Claims())
    assert f3b.numbers["n_incorrect"] == n_bad
    assert f"{160 - n_bad} correct / {n_bad} incorrect" in f3b.reason
    assert "hard renderings" in f3b.reason and "hard renderings" in f4.reason
    assert f4.numbers["n_incorrect_evaluated"] == f["evaluation"]["n_incorrect"]
    assert transfer_report._correctness_panels(out)[0][0] == "hard"

    alone = study.summarise_attention(easy, cfg, seed=0)["m"]
    assert alone["correctness_split"] == "all"
    assert alone["splits"]["all"] == out["splits"]["all"]  # the hard split changes nothing else
    (f3b_easy,) = verdicts.separation(Evidence({"m": "mllm"}, attention={"m": alone}), Claims())
    assert "analysed splits pooled" in f3b_easy.reason


def test_transfer_figures_draw_the_hard_split_first(tmp_path):
    shards = [_synthetic_shard("known", 40, 4), _synthetic_shard("hard", 40, 5)]
    summary = study.summarise_attention(shards, Attention(n_perm=50, n_boot=50), seed=1)
    assert transfer_report._correctness_panels(summary["m"]) == (["hard", "known", "all"], "hard")
    for draw in (transfer_report.fig_constraint_to_last, transfer_report.fig_failure):
        first = draw(summary, "m", tmp_path / "a")
        second = draw(summary, "m", tmp_path / "b")
        for p, q in zip(first, second, strict=True):
            assert p.read_bytes() == q.read_bytes() and p.stat().st_size > 1000


def test_fig5_draws_one_question_over_its_image(tiny_world, tmp_path):
    """The workflow's Fig. 5 job: per split, the first question (by qid) of its first shard
    whose visual tokens contribute, drawn over its own image beside the split's averages."""
    from mmtrace.dataset import load_questions
    from mmtrace.io import write_json
    from mmtrace.steps.transfer import fig5_examples

    csv = tiny_world / "known.csv"
    shard = _synthetic_shard("known", 12, 3)
    qids = [r.qid for r in load_questions([csv])][:12]
    for r, qid in zip(shard["records"], qids, strict=True):
        r["qid"] = qid
    first = next(r for r in shard["records"] if r["qid"] == min(qids))
    first["visual_to_constraint"] = [0.0] * 16  # contributes nothing: skipped
    write_json(tmp_path / "known_shard0.json", shard)
    examples = fig5_examples([tmp_path / "known_shard0.json"], [csv])
    qid, image, contrib = examples["known"]
    assert qid == sorted(qids)[1] and image.size == (48, 48) and len(contrib) == 16
    summary = study.summarise_attention([shard], Attention(n_perm=20, n_boot=20), seed=0)
    written = transfer_report.fig_visual(summary, "m", tmp_path / "fig5", examples)
    assert all(p.stat().st_size > 1000 for p in written)
