"""The corrupted run of a causal trace (docs/method.md §4.2: the constraint replaced by another of
the same token length, e.g. "This place" -> "Paris city").

Corruptions (`tracing.corruption` in config):
- `natural` (the default): the constraint is replaced by another entity's natural phrase of
  exactly its token length under the model's tokenizer, in context (the paper's "This place" ->
  "Paris city"), drawn in a seeded order from a pool (the split's other entity names, or other
  questions' textual constraints); only if no phrase of the pool has that length is the
  question's own replacement phrase fitted as `replace` does (the fit is recorded);
- `replace`: the constraint's tokens are overwritten by an incorrect constraint (the question's
  replacement phrase). The method needs equal token length; a phrase of another length is fitted
  (cut, or padded with its last token) and the fit is recorded with the trace.
- `repeat`: the authors' released script's scheme, every constraint token overwritten by one
  token (the first token of the replacement phrase).
- `noise`: ROME's Gaussian noise on the constraint's input embeddings (see tracing.noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from mmtrace import prompts
from mmtrace.models.encoding import AlignmentError, EncodedQuestion, Span, overlapping_tokens
from mmtrace.models.loading import LoadedModel
from mmtrace.seeding import derive

CORRUPTIONS = ("natural", "replace", "repeat", "noise")


def replacement_ids(loaded: LoadedModel, template: str, question: str, span: Span) -> list[int]:
    """The replacement phrase's tokens as they appear in context, in place of the span."""
    text = question[: span.start] + span.replacement + question[span.end :]
    prompt = prompts.build(template, text)
    start, end = prompt.shift(span.start, span.start + len(span.replacement))
    enc = loaded.tokenizer(prompt.text, return_offsets_mapping=True, add_special_tokens=True)
    hits = overlapping_tokens(enc["offset_mapping"], start, end)
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


def natural_phrase(
    loaded: LoadedModel,
    template: str,
    question: str,
    span: Span,
    n_tokens: int,
    pool: Sequence[str],
    seed: int,
    pairs: int = 64,
) -> tuple[str, list[int]] | None:
    """The first phrase of `pool` (in an order drawn from `seed`) that is not the constraint
    itself and takes exactly `n_tokens` tokens in its place, with those tokens. If no single
    phrase has that length (a long name), two phrases of the first `pairs` are joined with
    "and"; None if that fails too."""
    own = question[span.start : span.end].strip().lower()
    order = [
        p
        for p in sorted(set(pool), key=lambda p: (derive(seed, "natural", p), p))
        if p.strip() and p.strip().lower() != own
    ]

    def fits(phrase: str) -> list[int] | None:
        try:
            ids = replacement_ids(loaded, template, question, replace(span, replacement=phrase))
        except AlignmentError:
            return None
        return ids if len(ids) == n_tokens else None

    for phrase in order:
        if (ids := fits(phrase)) is not None:
            return phrase, ids
    for first in order[:pairs]:
        for second in order[:pairs]:
            if first != second and (ids := fits(f"{first} and {second}")) is not None:
                return f"{first} and {second}", ids
    return None


def corrupt_ids(
    enc: EncodedQuestion,
    loaded: LoadedModel,
    template: str,
    question: str,
    constraint: str,
    method: str,
    pool: Sequence[str] = (),
    seed: int = 0,
) -> tuple[torch.Tensor, str, str]:
    """Corrupted input ids (same length) for `natural`, `replace` or `repeat`; how the phrase
    fitted (`exact`, `cut`, `padded`, `repeat`); and the phrase written over the constraint."""
    positions = enc.span_positions[constraint]
    span = enc.spans[constraint]
    found = None
    if method == "natural":
        found = natural_phrase(loaded, template, question, span, len(positions), pool, seed)
    if found is not None:
        text, (new, how) = found[0], (found[1], "exact")
    elif method in ("natural", "replace"):
        text = span.replacement
        new, how = fit(replacement_ids(loaded, template, question, span), len(positions))
    elif method == "repeat":
        text = span.replacement
        new, how = [replacement_ids(loaded, template, question, span)[0]] * len(positions), "repeat"
    else:
        raise ValueError(f"token corruption must be one of {CORRUPTIONS[:3]}, not {method!r}")
    ids = enc.inputs["input_ids"].clone()
    ids[0, torch.tensor(positions)] = torch.tensor(new, device=ids.device)
    return ids, how, text
