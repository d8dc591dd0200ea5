"""The notebook API (`mmtrace.load`, `mmtrace.wrap` and the four analyses) on the tiny toy
checkpoints of tests/conftest.py: each result holds the numbers the underlying analysis
computes, and its figure, table and files are made from them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

import mmtrace
from mmtrace.api import InputError
from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import Span, encode_question
from mmtrace.models.loading import load as load_checkpoint
from mmtrace.models.loading import load_image
from mmtrace.models.scoring import first_answer_token, next_token_probs
from mmtrace.tracing import question as tracing
from mmtrace.transfer import ablation, visual


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in ("known", "heldout")])


@pytest.fixture(scope="module")
def rec(records):
    return next(r for r in records if r.constraint_type == "single" and not r.held_out)


@pytest.fixture(scope="module")
def mt(trained):
    return mmtrace.load(trained["mm-llama"], device="cpu")


def test_import_is_light_and_the_api_is_lazy():
    """`import mmtrace` loads no torch; the API's names resolve on first use."""
    code = (
        "import sys, mmtrace; assert 'torch' not in sys.modules; "
        "q = mmtrace.toy_question('known-0000-city'); assert 'torch' not in sys.modules; "
        "assert callable(mmtrace.load) and callable(mmtrace.wrap); print(q.answer)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Lunessa"
    with pytest.raises(AttributeError):
        mmtrace.no_such_name  # noqa: B018


def test_trace_is_the_question_tracer(mt, rec, tiny_world, tmp_path):
    image = tiny_world / rec.image_url
    r = mt.trace(image, rec.question, rec.main_entity, kinds="mlp", window=2, seed=5)
    # the same question through mmtrace.tracing directly
    template = Prompts().mllm
    start = rec.question.index(rec.main_entity)
    span = Span(start, start + len(rec.main_entity), "visual", "Paris")
    enc = encode_question(mt.loaded, template, "question", rec.question, [span], load_image(image))
    settings = tracing.TraceSettings(kinds=("mlp",), seed=5)
    prep = tracing.prepare(
        mt.loaded, enc, template, rec.question, "visual", settings, pool=["Paris"]
    )
    (want,) = tracing.run(mt.loaded, prep, [2], settings, {"model": str(mt.name)})
    np.testing.assert_array_equal(r.ie["mlp"], np.asarray(want["ie"]["mlp"]))
    assert r.record == want
    frame = r.to_frame()
    assert len(frame) == len(r.positions) * len(r.layers)
    assert frame.loc[frame.ie.idxmax(), "ie"] == pytest.approx(r.peak("mlp")[2])
    assert isinstance(r.plot(), Figure)
    for name in ("t.json", "t.csv", "t.png"):
        assert r.save(tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "t.json").read_text())  # written to mmtrace.io's digits
    np.testing.assert_allclose(saved["ie"]["mlp"], want["ie"]["mlp"], atol=1e-6)
    assert len(pd.read_csv(tmp_path / "t.csv")) == len(frame)
    assert "peak IE" in repr(r)


def test_constraint_by_offsets_and_errors(mt, rec, tiny_world):
    image = tiny_world / rec.image_url
    start = rec.question.index(rec.main_entity)
    a = mt.contributions(image, rec.question, rec.main_entity)
    b = mt.contributions(image, rec.question, (start, start + len(rec.main_entity)))
    assert a.record == b.record
    with pytest.raises(InputError, match="not part of the question"):
        mt.trace(image, rec.question, "no such words")
    with pytest.raises(InputError, match="image is required"):
        mt.trace(None, rec.question, rec.main_entity)
    with pytest.raises(InputError, match="no such layer"):
        mt.edit(image, rec.question, rec.main_entity, "x", layer=mt.n_layers)


def test_contributions_table_and_figure(mt, rec, tiny_world):
    c = mt.contributions(tiny_world / rec.image_url, rec.question, rec.main_entity)
    frame = c.to_frame()
    assert len(frame) == c.to_last.size
    constraint = frame[frame.constraint].groupby("layer").contribution.max().to_numpy()
    np.testing.assert_allclose(constraint, c.constraint_to_last)  # reduce: max
    v = c.to_frame("visual")
    np.testing.assert_array_equal(v.contribution.to_numpy(), c.visual_to_constraint)
    assert len(v) == 16 and c.concentration is not None
    assert isinstance(c.plot(), Figure)


def test_ablate_is_the_question_ablation(mt, rec, tiny_world):
    image = tiny_world / rec.image_url
    r = mt.ablate(image, rec.question, rec.main_entity, answer=rec.answers, seed=3)
    assert r.record["ways"] == ["block"]  # `mean` needs images to average
    enc = mt.encode(image, rec.question, rec.main_entity)
    contrib = visual.visual_to_constraint(mt.model, enc, 0)
    np.testing.assert_array_equal(r.record["contribution"], contrib)
    gold = r.record["answer_ids"]
    ks = ablation.ks_for(mt.defaults.ablation.fractions, contrib.size)
    layers = list(range(min(mt.defaults.ablation.block_layers, mt.n_layers)))
    want = ablation.ablate_question(
        mt.loaded, enc, gold, contrib, ks, ["block"], layers, None,
        mt.defaults.ablation.random_draws, 3, 64, per_layer=True,
        coverage=ablation_coverage(image, contrib.size),
    )  # fmt: skip
    assert r.record["block"] == want["block"]
    assert r.record["per_layer"] == want["per_layer"]
    frame = r.to_frame()
    assert set(frame.ranking) >= {"top", "random", "bottom"} and set(frame.k) == set(ks)
    assert frame.drop_p_answer.to_numpy() == pytest.approx(r.p_clean - frame.p_answer.to_numpy())
    assert isinstance(r.plot(), Figure)
    m = mt.ablate(image, rec.question, rec.main_entity, ways=["block", "mean"],
                  mean_images=[image, image], per_layer=False)  # fmt: skip
    assert m.record["ways"] == ["block", "mean"] and "per_layer" not in m.record
    with pytest.raises(InputError, match="mean ablation needs images"):
        mt.ablate(image, rec.question, rec.main_entity, ways=["mean"])


def ablation_coverage(image, n):
    import math

    from mmtrace.toyworld.images import patch_coverage

    return patch_coverage(image, math.isqrt(n))


@pytest.mark.parametrize("method", ["multedit", "finetune", "finetune_constrained"])
def test_edit_and_undo(mt, records, tiny_world, method):
    rec = next(r for r in records if r.held_out)
    image = tiny_world / rec.image_url
    weights = {n: p.detach().clone() for n, p in mt.model.named_parameters()}
    settings = {"multedit": dict(steps=30, lr=1.0, clamp=50.0)}.get(method, dict(lr=0.01))
    with mt.edit(image, rec.question, rec.main_entity, rec.answer, method=method, layer=0,
                 paraphrases=rec.paraphrases, unrelated=[(image, rec.question, rec.answer)],
                 **settings) as r:  # fmt: skip
        enc = mt.encode(image, rec.question, rec.main_entity)
        target = first_answer_token(mt.tokenizer, enc.prompt, rec.answer)
        p = float(next_token_probs(mt.loaded, [enc.prompt], [enc.image])[0, target])
        assert r.efficacy == pytest.approx(p, abs=1e-6)  # the edited model's p(target)
        assert set(r.metrics) == {"efficacy", "generalisation", "specificity"}
        changed = [n for n, p in mt.model.named_parameters() if not torch.equal(p, weights[n])]
        assert len(changed) == 1 and changed[0].endswith("layers.0.mlp.down_proj.weight")
        assert set(r.to_frame().metric) == set(r.metrics)
        assert isinstance(r.plot(), Figure)
    assert r.undone
    assert all(torch.equal(p, weights[n]) for n, p in mt.model.named_parameters())


def test_wrap_a_model_loaded_in_the_notebook(trained, mt, rec, tiny_world):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(trained["mm-llama"])
    wrapped = mmtrace.wrap(model, AutoProcessor.from_pretrained(trained["mm-llama"]))
    assert wrapped.role == "mllm" and wrapped.n_layers == mt.n_layers
    image = tiny_world / rec.image_url
    a = wrapped.trace(image, rec.question, rec.main_entity, kinds="attn")
    b = mt.trace(image, rec.question, rec.main_entity, kinds="attn")
    assert a.ie["attn"].tolist() == b.ie["attn"].tolist()
    lm = mmtrace.wrap(
        load_checkpoint(trained["llama"], "llm").model,
        load_checkpoint(trained["llama"], "llm").tokenizer,
    )
    span = rec.text_constraints[0]
    t = lm.trace(None, rec.text_question, span.text, kinds="hidden")
    assert t.ie["hidden"].shape == (len(t.positions), lm.n_layers)


def test_the_default_edit_works_on_the_shipped_toy_model(repo_root):
    """MultEdit with the model's own settings (config.yaml's editing for the toy models: layer
    0, 40 steps of lr 0.5) inserts a held-out fact into the shipped toy LLaVA; the release's
    settings (layer 2, 10 steps of lr 0.1, the schema's) barely move it."""
    mt = mmtrace.load(repo_root / "checkpoints" / "toy" / "toy-llava", device="cpu")
    assert (mt.defaults.editing.layer, mt.defaults.editing.steps) == (0, 40)
    q = next(q for q in mmtrace.toy_questions("heldout") if q.constraint)
    with mt.edit(q.image, q.question, q.constraint, q.answer) as own:
        assert own.record["layer"] == 0 and own.record["settings"]["steps"] == 40
    with mt.edit(q.image, q.question, q.constraint, q.answer, layer=2, steps=10, lr=0.1) as rel:
        pass
    before = own.metrics["efficacy"]["before"]
    assert own.efficacy - before > 0.1 > rel.efficacy - before
