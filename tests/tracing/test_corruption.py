"""Constraint alignment and corruption on the tiny trained toy models (real tokenizer and
processor, as a real checkpoint would be loaded)."""

from __future__ import annotations

import pytest
import torch

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.loading import load, load_image
from mmtrace.tracing.corruption import (
    ROLES,
    AlignmentError,
    Span,
    corrupt_ids,
    encode_question,
    fit,
    roles,
)

SPLITS = ("known", "movies", "okvqa")


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in SPLITS])


@pytest.fixture(scope="module", params=["mm-llama", "llama"])
def model(request, trained):
    role = "mllm" if request.param.startswith("mm-") else "llm"
    return load(trained[request.param], role)


def _encode(loaded, rec, world):
    mm = loaded.is_multimodal
    question = rec.question if mm else rec.text_question
    spans = [
        Span(s.start, s.end, s.type, s.replacement)
        for s in (rec.constraints if mm else rec.text_constraints)
    ]
    template = Prompts().mllm if mm else Prompts().llm
    image = load_image(world / rec.image_url) if mm else None
    return encode_question(loaded, template, rec.qid, question, spans, image), template, question


def _norm(text: str) -> str:
    return "".join(text.split())


def test_spans_cover_exactly_the_constraint_tokens(model, records, tiny_world):
    for rec in records:
        enc, _, question = _encode(model, rec, tiny_world)
        for ctype, span in enc.spans.items():
            ids = [enc.input_ids[p] for p in enc.span_positions[ctype]]
            decoded = model.tokenizer.decode(ids)
            assert _norm(question[span.start : span.end]) == _norm(decoded), rec.qid


def test_image_tokens_come_from_the_model_config(model, records, tiny_world):
    enc, *_ = _encode(model, records[0], tiny_world)
    if model.is_multimodal:
        n = model.model.config.image_seq_length
        assert len(enc.image_positions) == n
        image_id = model.model.config.image_token_id
        assert all(enc.input_ids[p] == image_id for p in enc.image_positions)
        assert enc.positions_to_trace()[0] == enc.image_positions[-1]
    else:
        assert enc.image_positions == [] and enc.positions_to_trace()[0] == 0
    assert enc.positions_to_trace()[-1] == len(enc.input_ids) - 1


@pytest.mark.parametrize("method", ["replace", "repeat"])
def test_corruption_changes_only_the_constraint(model, records, tiny_world, method):
    for rec in records[:20]:
        enc, template, question = _encode(model, rec, tiny_world)
        for ctype, positions in enc.span_positions.items():
            ids, how = corrupt_ids(enc, model, template, question, ctype, method)
            clean = enc.inputs["input_ids"]
            assert ids.shape == clean.shape
            changed = set((ids[0] != clean[0]).nonzero().flatten().tolist())
            assert changed and changed <= set(positions), rec.qid
            assert how in (("repeat",) if method == "repeat" else ("exact", "cut", "padded"))


def test_fit_keeps_the_token_length():
    assert fit([1, 2], 2) == ([1, 2], "exact")
    assert fit([1, 2, 3], 2) == ([1, 2], "cut")
    assert fit([1, 2], 4) == ([1, 2, 2, 2], "padded")


def test_unalignable_span_names_the_question(model, records, tiny_world):
    rec = records[0]
    loaded = model
    question = rec.question if loaded.is_multimodal else rec.text_question
    template = Prompts().mllm if loaded.is_multimodal else Prompts().llm
    image = load_image(tiny_world / rec.image_url) if loaded.is_multimodal else None
    n = len(question)
    for bad in (Span(3, 3, "visual", "x"), Span(n, n + 4, "visual", "x")):
        with pytest.raises(AlignmentError, match=rec.qid):
            encode_question(loaded, template, rec.qid, question, [bad], image)


def test_roles_follow_the_sequence(model, records, tiny_world):
    multi = next(r for r in records if r.constraint_type == "multi")
    enc, *_ = _encode(model, multi, tiny_world)
    positions = enc.positions_to_trace()
    for constraint in enc.span_positions:
        rs = roles(enc, positions, constraint)
        assert rs[-1] == "last_token"
        assert rs.count("last") == 1 and set(rs) <= set(ROLES)
        span = enc.span_positions[constraint]
        assert rs[positions.index(span[-1])] == "last"
        other = next(c for c in enc.span_positions if c != constraint)
        for p in enc.span_positions[other]:
            assert rs[positions.index(p)] == "other_constraint"
        # roles appear in sequence order, never going back (apart from the other constraint)
        order = [ROLES.index(r) for r in rs if r != "other_constraint"]
        assert order == sorted(order)


def test_corrupted_ids_lower_the_clean_run(model, records, tiny_world):
    """The corruption feeds the model different tokens at the span (the model then sees them)."""
    enc, template, question = _encode(model, records[0], tiny_world)
    ids, _ = corrupt_ids(enc, model, template, question, "visual", "repeat")
    with torch.no_grad():
        a = model.model(**enc.inputs).logits[0, -1]
        b = model.model(**{**enc.inputs, "input_ids": ids}).logits[0, -1]
    assert not torch.equal(a, b)
