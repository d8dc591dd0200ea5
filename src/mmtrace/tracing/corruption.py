"""The corrupted run of a causal trace (docs/method.md §4.2: the constraint replaced by another of
the same token length, e.g. "This place" -> "Paris city").

Corruptions (`tracing.corruption` in config):
- `replace`: the constraint's tokens are overwritten by an incorrect constraint (the question's
  replacement phrase). The method needs equal token length; a phrase of another length is fitted
  (cut, or padded with its last token) and the fit is recorded with the trace.
- `repeat`: the authors' released script's scheme, every constraint token overwritten by one
  token (the first token of the replacement phrase).
- `noise`: ROME's Gaussian noise on the constraint's input embeddings (see tracing.noise).
"""

from __future__ import annotations

import torch

from mmtrace import prompts
from mmtrace.models.encoding import AlignmentError, EncodedQuestion, Span, overlapping_tokens
from mmtrace.models.loading import LoadedModel

CORRUPTIONS = ("replace", "repeat", "noise")


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
