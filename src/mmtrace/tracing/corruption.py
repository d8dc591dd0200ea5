"""From a question to the clean and corrupted inputs of a causal trace (SPEC 4, steps 1-2).

Constraint spans come as character offsets in the question. They are aligned to token positions
through the tokenizer's offset mapping, then shifted past the image tokens that the processor
expands `<image>` into, so the positions index the exact `input_ids` the model sees. Visual-token
positions come from the model's image token id, never from a constant.

Corruptions (`tracing.corruption` in config):
- `replace`: the constraint's tokens are overwritten by an incorrect constraint (the question's
  replacement phrase). The paper needs equal token length; a phrase of another length is fitted
  (cut, or padded with its last token) and the fit is recorded with the trace.
- `repeat`: the release's scheme, every constraint token overwritten by one token (the first token
  of the replacement phrase).
- `noise`: ROME's Gaussian noise on the constraint's input embeddings (see tracing.noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from mmtrace import prompts as P
from mmtrace.models.loading import LoadedModel

CORRUPTIONS = ("replace", "repeat", "noise")

# Token roles of traced positions, in the order figures list them (ROME's average plots, extended
# with the image and a second constraint).
ROLES = (
    "last_image",
    "before",
    "first",
    "middle",
    "last",
    "other_constraint",
    "first_after",
    "further",
    "last_token",
)
ROLE_LABELS = {
    "last_image": "last visual token",
    "before": "tokens before constraint",
    "first": "first constraint token",
    "middle": "middle constraint tokens",
    "last": "last constraint token",
    "other_constraint": "other constraint's tokens",
    "first_after": "first token after",
    "further": "further tokens",
    "last_token": "last token",
}


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

    def positions_to_trace(self) -> list[int]:
        """From the last visual token (the first position for a text-only model) to the end."""
        start = self.image_positions[-1] if self.image_positions else 0
        return list(range(start, len(self.input_ids)))


def image_token_id(model) -> int | None:
    cfg = model.config
    for attr in ("image_token_id", "image_token_index"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    return None


def _overlapping(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
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


def encode_question(
    loaded: LoadedModel,
    template: str,
    qid: str,
    question: str,
    spans: Sequence[Span],
    image=None,
) -> EncodedQuestion:
    """Tokenise prompt (and image) and align each constraint span to token positions."""
    prompt = P.build(template, question)
    inputs = loaded.encode([prompt.text], [image] if loaded.is_multimodal else None)
    model_ids = inputs["input_ids"][0].tolist()
    image_id = image_token_id(loaded.model) if loaded.is_multimodal else None
    enc = loaded.tokenizer(prompt.text, return_offsets_mapping=True, add_special_tokens=True)
    try:
        mapping = _expand_positions(list(enc["input_ids"]), model_ids, image_id)
    except AlignmentError as exc:
        raise AlignmentError(f"question {qid}: {exc}") from None
    span_positions: dict[str, list[int]] = {}
    by_type: dict[str, Span] = {}
    for span in spans:
        if not 0 <= span.start < span.end <= len(question):
            raise AlignmentError(
                f"question {qid}: {span.type} constraint at characters {span.start}-{span.end} "
                f"is empty or outside the question ({len(question)} characters)"
            )
        start, end = prompt.shift(span.start, span.end)
        hits = _overlapping(enc["offset_mapping"], start, end)
        if not hits:
            raise AlignmentError(
                f"question {qid}: {span.type} constraint {question[span.start : span.end]!r} "
                f"(characters {span.start}-{span.end}) covers no token"
            )
        if span.type in span_positions:
            raise AlignmentError(f"question {qid}: two {span.type} constraints")
        span_positions[span.type] = [mapping[i] for i in hits]
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
    )


def replacement_ids(loaded: LoadedModel, template: str, question: str, span: Span) -> list[int]:
    """The replacement phrase's tokens as they appear in context, in place of the span."""
    text = question[: span.start] + span.replacement + question[span.end :]
    prompt = P.build(template, text)
    start, end = prompt.shift(span.start, span.start + len(span.replacement))
    enc = loaded.tokenizer(prompt.text, return_offsets_mapping=True, add_special_tokens=True)
    hits = _overlapping(enc["offset_mapping"], start, end)
    if not hits:
        raise AlignmentError(f"replacement {span.replacement!r} covers no token")
    return [enc["input_ids"][i] for i in hits]


def fit(ids: list[int], n: int) -> tuple[list[int], str]:
    """Fit replacement tokens to the constraint's token length n: exact, cut, or padded."""
    if len(ids) == n:
        return list(ids), "exact"
    if len(ids) > n:
        return list(ids[:n]), "cut"
    return list(ids) + [ids[-1]] * (n - len(ids)), "padded"


def corrupt_ids(
    enc: EncodedQuestion,
    loaded: LoadedModel,
    template: str,
    question: str,
    constraint: str,
    method: str,
) -> tuple[torch.Tensor, str]:
    """Corrupted input ids (same length) for `replace` or `repeat`, and how the phrase fitted."""
    positions = enc.span_positions[constraint]
    phrase = replacement_ids(loaded, template, question, enc.spans[constraint])
    if method == "replace":
        new, how = fit(phrase, len(positions))
    elif method == "repeat":
        new, how = [phrase[0]] * len(positions), "repeat"
    else:
        raise ValueError(f"token corruption must be 'replace' or 'repeat', not {method!r}")
    ids = enc.inputs["input_ids"].clone()
    ids[0, torch.tensor(positions)] = torch.tensor(new, device=ids.device)
    return ids, how


def roles(enc: EncodedQuestion, positions: Sequence[int], constraint: str) -> list[str]:
    """Each traced position's role relative to the corrupted constraint (see ROLES)."""
    span = enc.span_positions[constraint]
    others = {p for t, ps in enc.span_positions.items() if t != constraint for p in ps}
    last = len(enc.input_ids) - 1
    image = set(enc.image_positions)
    out = []
    for p in positions:
        if p == last:
            out.append("last_token")
        elif p in image:
            out.append("last_image")
        elif p == span[-1]:
            out.append("last")  # a one-token constraint counts as its last token
        elif p == span[0]:
            out.append("first")
        elif span[0] < p < span[-1]:
            out.append("middle")
        elif p in others:
            out.append("other_constraint")
        elif p < span[0]:
            out.append("before")
        elif p == span[-1] + 1:
            out.append("first_after")
        else:
            out.append("further")
    return out
