"""Questions to model inputs: constraint spans aligned to the exact token positions the model
sees, on the tiny trained toy models (real tokenizer and processor)."""

from __future__ import annotations

import pytest

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import AlignmentError, Span, encode_question, encode_record
from mmtrace.models.loading import load, load_image

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


def test_encode_record_is_encode_question_with_the_rows_spans(model, records, tiny_world):
    for rec in records[:5]:
        want, _, _ = _encode(model, rec, tiny_world)
        got = encode_record(model, rec, Prompts(), tiny_world)
        assert got.input_ids == want.input_ids and got.span_positions == want.span_positions
        assert got.image_positions == want.image_positions and got.prompt == want.prompt
        visual = encode_record(model, rec, Prompts(), tiny_world, types=("visual",))
        assert visual.span_positions == {"visual": want.span_positions["visual"]}
