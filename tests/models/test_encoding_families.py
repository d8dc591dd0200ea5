"""Constraint spans land on the processor's own tokens for every family
(tests/support/families.py): with each family's raw prompt and, where it has one, its chat
template, whatever the processor inserts (expanded image tokens, Idefics3's image markers,
Gemma-3's image block, PaliGemma's image tokens and BOS); the positions index the model's
input_ids; a prompt whose input has no image token is refused."""

from __future__ import annotations

import pytest
from support.families import CONSTRAINT, FAMILIES, QUESTION, encoded, image, loaded

from mmtrace.models.encoding import AlignmentError, Span, encode_question, render_template

NAMES = sorted(n for n, f in FAMILIES.items() if f.status != "refused")


def _span_text(enc) -> str:
    return "".join(enc.tokens[p] for p in enc.span_positions["visual"])


@pytest.mark.parametrize("name", NAMES)
def test_the_constraint_is_found_on_the_processors_tokens(name):
    lm = loaded(name)
    enc = encoded(lm)
    assert enc.input_ids == enc.inputs["input_ids"][0].tolist()
    assert _span_text(enc) == CONSTRAINT
    assert enc.image_positions and max(enc.image_positions) < enc.span_positions["visual"][0]
    if lm.processor.chat_template:
        chat = encoded(lm, render_template(lm, "chat:{question}?"))
        assert _span_text(chat) == CONSTRAINT and chat.image_positions


def test_a_prompt_without_the_models_image_placeholder_is_refused():
    lm = loaded("qwen2_vl")
    start = QUESTION.index(CONSTRAINT)
    span = Span(start, start + len(CONSTRAINT), "visual", "x")
    with pytest.raises(AlignmentError, match="image placeholder"):
        encode_question(lm, "<image>\nUSER: {question}?", "q", QUESTION, [span], image(0))


@pytest.mark.parametrize("name", NAMES)
def test_the_projector_is_found_by_name(name):
    """`lookup.projector`: LLaVA's family, Gemma-3 and PaliGemma name it multi_modal_projector,
    Qwen its vision tower's merger, Idefics3 and SmolVLM connector."""
    from torch import nn

    from mmtrace.models.lookup import projector

    assert isinstance(projector(loaded(name).model), nn.Module)
