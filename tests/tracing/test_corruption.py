"""Constraint alignment and corruption on the tiny trained toy models (real tokenizer and
processor, as a real checkpoint would be loaded)."""

from __future__ import annotations

import pytest
import torch

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import encode_record, question_text
from mmtrace.models.loading import load
from mmtrace.tracing.corruption import corrupt_ids, fit

SPLITS = ("known", "movies", "okvqa")


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in SPLITS])


@pytest.fixture(scope="module", params=["mm-llama", "llama"])
def model(request, trained):
    role = "mllm" if request.param.startswith("mm-") else "llm"
    return load(trained[request.param], role)


@pytest.mark.parametrize("method", ["replace", "repeat"])
def test_corruption_changes_only_the_constraint(model, records, tiny_world, method):
    for rec in records[:20]:
        enc = encode_record(model, rec, Prompts(), tiny_world)
        template, question = _template_and_question(model, rec)
        for ctype, positions in enc.span_positions.items():
            ids, how, _text = corrupt_ids(enc, model, template, question, ctype, method)
            clean = enc.inputs["input_ids"]
            assert ids.shape == clean.shape
            changed = set((ids[0] != clean[0]).nonzero().flatten().tolist())
            assert changed and changed <= set(positions), rec.qid
            assert how in (("repeat",) if method == "repeat" else ("exact", "cut", "padded"))


def test_fit_keeps_the_token_length():
    assert fit([1, 2], 2) == ([1, 2], "exact")
    assert fit([1, 2, 3], 2) == ([1, 2], "cut")
    assert fit([1, 2], 4) == ([1, 2, 2, 2], "padded")


def test_corrupted_ids_lower_the_clean_run(model, records, tiny_world):
    """The corruption feeds the model different tokens at the span (the model then sees them)."""
    rec = records[0]
    enc = encode_record(model, rec, Prompts(), tiny_world)
    template, question = _template_and_question(model, rec)
    ids, *_ = corrupt_ids(enc, model, template, question, "visual", "repeat")
    with torch.no_grad():
        a = model.model(**enc.inputs).logits[0, -1]
        b = model.model(**{**enc.inputs, "input_ids": ids}).logits[0, -1]
    assert not torch.equal(a, b)


def _template_and_question(loaded, rec):
    prompts = Prompts()
    template = prompts.mllm if loaded.is_multimodal else prompts.llm
    return template, question_text(rec, loaded.is_multimodal)
