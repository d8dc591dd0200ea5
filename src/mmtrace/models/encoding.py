"""From a question to the exact inputs a model sees, with its constraints located in tokens.

Constraint spans come as character offsets in the question. They are aligned on the processor's
own output: the text the processor tokenised (the prompt with its image placeholders expanded,
Idefics3's image markers and Gemma-3's image block inserted, PaliGemma's BOS added) is recorded
with each token's character offsets, the question is found in it, and a span's tokens are those
its characters overlap. So the positions index the exact `input_ids` the model sees (in LLaVA-1.5:
BOS, the visual tokens, then the text; the constraint comes after every visual token), for any
processor and any prompt, a model's chat template included (`chat_template`). Visual-token
positions come from the model's image token id, never from a constant.

Every analysis (tracing, attention contributions, ablation, editing) encodes its questions through
`encode_record`, so a question's positions are the same in all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmtrace import prompts
from mmtrace.config import Prompts
from mmtrace.dataset import QuestionRecord
from mmtrace.models.loading import LoadedModel, load_image


class AlignmentError(ValueError):
    """A constraint span could not be mapped to tokens (the message names the question)."""


@dataclass(frozen=True)
class Span:
    """A constraint in the question: character offsets, its type and an incorrect replacement."""

    start: int
    end: int
    type: str  # visual | textual
    replacement: str


@dataclass
class EncodedQuestion:
    """A question as the model sees it, with its constraints located in token positions."""

    qid: str
    prompt: str
    inputs: dict[str, torch.Tensor]  # batch-1 model inputs
    input_ids: list[int]
    tokens: list[str]
    image_positions: list[int]
    span_positions: dict[str, list[int]]  # constraint type -> token positions
    spans: dict[str, Span] = field(default_factory=dict)
    image: Any = None  # the PIL image (multimodal models), as passed to the processor

    def positions_to_trace(self) -> list[int]:
        """From the last visual token (the first position for a text-only model) to the end."""
        start = self.image_positions[-1] if self.image_positions else 0
        return list(range(start, len(self.input_ids)))


def image_token_id(model) -> int | None:
    """The id the processor expands into the visual tokens (None for a text-only model)."""
    cfg = model.config
    for attr in ("image_token_id", "image_token_index"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    return None


def overlapping_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of the tokens whose character offsets overlap [start, end)."""
    return [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]


def _expand_positions(tok_ids: list[int], model_ids: list[int], image_id: int | None) -> list[int]:
    """Map each tokenizer position to its position in the processor's ids, where every image
    token may have been expanded into several; check that the rest is unchanged."""
    n_tok = tok_ids.count(image_id) if image_id is not None else 0
    n_model = model_ids.count(image_id) if image_id is not None else 0
    if n_tok == 0:
        if tok_ids != model_ids:
            raise AlignmentError("tokenizer and model inputs differ")
        return list(range(len(tok_ids)))
    if n_model % n_tok:
        raise AlignmentError(f"{n_model} image tokens cannot expand {n_tok} placeholders")
    per = n_model // n_tok
    mapping, expanded = [], []
    for t in tok_ids:
        mapping.append(len(expanded))
        expanded.extend([t] * per if t == image_id else [t])
    if expanded != model_ids:
        raise AlignmentError("model inputs are not the tokenizer's ids with expanded image tokens")
    return mapping


CHAT = "chat"


def is_chat(template: str) -> bool:
    """A chat-template prompt: `chat` (the user says the question) or `chat:<text>` (the user
    says <text>, with {question} in it)."""
    return template == CHAT or template.startswith(CHAT + ":")


def render_template(loaded: LoadedModel, template: str) -> str:
    """A template with {question}: `template` itself, or for a chat-template prompt
    (`is_chat`) the model's own chat template applied to one user turn (the image, then the
    text) with the generation prompt, as the processor's `apply_chat_template` writes it (a
    leading BOS the tokenizer adds anyway is dropped)."""
    if not is_chat(template):
        return template
    text = template[len(CHAT) + 1 :] if template != CHAT else "{question}"
    if loaded.is_multimodal:
        owner = loaded.processor
        content: Any = [{"type": "image"}, {"type": "text", "text": text}]
    else:
        owner, content = loaded.tokenizer, text
    if not getattr(owner, "chat_template", None):
        raise AlignmentError(
            f"{loaded.name} has no chat template: give a prompt template with {{question}}"
        )
    out = owner.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )
    tok = loaded.tokenizer
    bos = tok.bos_token
    if bos and out.startswith(bos) and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
        out = out[len(bos) :]
    if out.count("{question}") != 1:
        raise AlignmentError(f"{loaded.name}'s chat template does not keep {{question}} once")
    return out


def render_prompts(loaded: LoadedModel, templates: Prompts) -> Prompts:
    """`templates` with chat-template prompts rendered for `loaded` (`render_template`)."""
    return templates.model_copy(
        update={k: render_template(loaded, getattr(templates, k)) for k in ("mllm", "llm")}
    )


def question_start(text: str, prompt: prompts.Prompt, question: str) -> int:
    """Where the question starts in `text`, the processor's expansion of the prompt: the one
    occurrence of the question there, or the one followed by the prompt's text after it."""
    hits, at = [], text.find(question)
    while at >= 0:
        hits.append(at)
        at = text.find(question, at + 1)
    after = prompt.text[prompt.question_offset + len(question) :]
    if len(hits) > 1:
        hits = [h for h in hits if text.startswith(after, h + len(question))]
    if len(hits) != 1:
        raise AlignmentError(
            f"the question occurs {len(hits)} times in the processor's text, not once"
        )
    return hits[0]


def _aligned(loaded: LoadedModel, prompt: prompts.Prompt, question: str, image):
    """(inputs, processor ids, token offsets, where the question starts in their text): the
    constraint's characters are found in the text the processor tokenised (its chat template
    and image placeholders expanded), so spans land on the processor's own tokens. A slow
    tokenizer has no offsets there: its ids are matched to the tokenizer's own instead."""
    images = [image] if loaded.is_multimodal else None
    try:
        inputs, texts = loaded.encode_with_text([prompt.text], images, offsets=True)
    except ValueError as exc:  # e.g. no image placeholder of this model's in the prompt
        raise AlignmentError(
            f"the processor refused the prompt ({exc}): give the model's image placeholder "
            "or use its chat template (--prompt chat)"
        ) from None
    except NotImplementedError:  # a Python tokenizer: no offset mapping
        inputs = loaded.encode([prompt.text], images)
        model_ids = inputs["input_ids"][0].tolist()
        enc = loaded.tokenizer(prompt.text, return_offsets_mapping=True, add_special_tokens=True)
        image_id = image_token_id(loaded.model) if loaded.is_multimodal else None
        mapping = _expand_positions(list(enc["input_ids"]), model_ids, image_id)
        offsets = [(-1, -1)] * len(model_ids)
        for i, j in enumerate(mapping):
            offsets[j] = tuple(enc["offset_mapping"][i])
        return inputs, model_ids, offsets, prompt.question_offset
    offsets = [tuple(o) for o in inputs.pop("offset_mapping")[0].tolist()]
    start = question_start(texts[0], prompt, question)
    return inputs, inputs["input_ids"][0].tolist(), offsets, start


def encode_question(
    loaded: LoadedModel,
    template: str,
    qid: str,
    question: str,
    spans: Sequence[Span],
    image=None,
) -> EncodedQuestion:
    """Tokenise prompt (and image) through the model's processor and align each constraint
    span to the positions of the processor's own tokens."""
    prompt = prompts.build(template, question)
    try:
        inputs, model_ids, offsets, q0 = _aligned(loaded, prompt, question, image)
    except AlignmentError as exc:
        raise AlignmentError(f"question {qid}: {exc}") from None
    image_id = image_token_id(loaded.model) if loaded.is_multimodal else None
    if loaded.is_multimodal and image_id not in model_ids:
        raise AlignmentError(
            f"question {qid}: the processor's input has no image token: give the prompt the "
            "model's image placeholder (e.g. <image>, <|image_pad|>) or use its chat template "
            "(--prompt chat)"
        )
    span_positions: dict[str, list[int]] = {}
    by_type: dict[str, Span] = {}
    for span in spans:
        if not 0 <= span.start < span.end <= len(question):
            raise AlignmentError(
                f"question {qid}: {span.type} constraint at characters {span.start}-{span.end} "
                f"is empty or outside the question ({len(question)} characters)"
            )
        start, end = q0 + span.start, q0 + span.end
        hits = overlapping_tokens(offsets, start, end)
        if not hits:
            raise AlignmentError(
                f"question {qid}: {span.type} constraint {question[span.start : span.end]!r} "
                f"(characters {span.start}-{span.end}) covers no token"
            )
        if span.type in span_positions:
            raise AlignmentError(f"question {qid}: two {span.type} constraints")
        span_positions[span.type] = hits
        by_type[span.type] = span
    return EncodedQuestion(
        qid=qid,
        prompt=prompt.text,
        inputs=inputs,
        input_ids=model_ids,
        tokens=loaded.tokenizer.convert_ids_to_tokens(model_ids),
        image_positions=[i for i, t in enumerate(model_ids) if t == image_id],
        span_positions=span_positions,
        spans=by_type,
        image=image,
    )


def question_text(record: QuestionRecord, multimodal: bool) -> str:
    """What a model of this kind is asked: the image question, or its textual counterpart (the
    visual constraint replaced by the entity's name) for a text-only LLM."""
    return record.question if multimodal else record.text_question


def encode_record(
    loaded: LoadedModel,
    record: QuestionRecord,
    templates: Prompts,
    data_dir: Path,
    types: Sequence[str] | None = None,
) -> EncodedQuestion:
    """A question table row, encoded for `loaded`: an MLLM gets the image question, its image
    and its constraints; an LLM the textual counterpart and its constraints. `types` keeps only
    constraints of those types (all by default)."""
    mm = loaded.is_multimodal
    spans = record.constraints if mm else record.text_constraints
    return encode_question(
        loaded,
        templates.mllm if mm else templates.llm,
        record.qid,
        question_text(record, mm),
        [
            Span(s.start, s.end, s.type, s.replacement)
            for s in spans
            if types is None or s.type in types
        ],
        load_image(data_dir / record.image_url) if mm else None,
    )
