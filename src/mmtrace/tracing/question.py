"""Trace one question: clean run, corruption, restorations of every kind, as one JSON record.

Used by `mmtrace trace` and by the workflow, so both write the same record (docs/method.md §4):
`input_ids`, `corrupted_input_ids`, `tokens`, `roles` (per traced position), `positions`
(absolute indices into input_ids), `layers`, `answer_token_id`, `answer`, `p_clean`, `p_corr`,
`ie` = {kind: positions x layers}, and `exactness`: which path computed it (the engine, or the
exact reference) and the engine's check on this model (tracing.gate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmtrace.config import Tracing
from mmtrace.models import families
from mmtrace.models.encoding import EncodedQuestion
from mmtrace.models.loading import LoadedModel
from mmtrace.models.lookup import locate
from mmtrace.models.scoring import answer_probs
from mmtrace.tracing import gate
from mmtrace.tracing.corruption import corrupt_ids
from mmtrace.tracing.engine import Passes, record_passes
from mmtrace.tracing.noise import EmbeddingNoise, gaussian_noise
from mmtrace.tracing.roles import roles

_DEFAULTS = Tracing()


@dataclass(frozen=True)
class TraceSettings:
    """How one question is traced; the defaults are `config.Tracing`'s."""

    kinds: tuple[str, ...] = tuple(_DEFAULTS.kinds)
    window_style: str = _DEFAULTS.window_style
    corruption: str = _DEFAULTS.corruption  # natural | replace | repeat | noise
    noise_scale: float = _DEFAULTS.noise_scale
    seed: int = 0
    batch_size: int = _DEFAULTS.batch_size
    exact: bool = _DEFAULTS.exact  # trace with the exact reference, never the engine


@dataclass
class Prepared:
    """A question's clean and corrupted runs, before any restoration: `passes` holds what they
    recorded, so the restorations of every kind and window reuse them."""

    enc: EncodedQuestion
    constraint: str
    corrupted: dict
    noise: EmbeddingNoise | None
    fit: str
    replacement: str  # the phrase written over the constraint ("" for noise)
    answer_id: int
    p_clean: float
    p_corr: float
    passes: Passes | None = None


@torch.no_grad()
def prepare(
    loaded: LoadedModel,
    enc: EncodedQuestion,
    template: str,
    question: str,
    constraint: str,
    settings: TraceSettings,
    answer_id: int | None = None,
    pool: Sequence[str] = (),
) -> Prepared:
    """Clean and corrupted runs, recorded once for every restoration: the answer token (the
    model's own top-1 unless given), p_clean and p_corr, so questions can be screened before
    the expensive restorations. `pool`: the phrases a `natural` corruption draws from."""
    model = loaded.model
    families.check(model)  # a model no analysis supports is refused before any pass
    if settings.corruption == "noise":
        noise = gaussian_noise(
            model, enc.span_positions[constraint], settings.noise_scale, settings.seed
        )
        corrupted, fit, text = enc.inputs, "noise", ""
    else:
        noise = None
        ids, fit, text = corrupt_ids(
            enc, loaded, template, question, constraint, settings.corruption, pool, settings.seed
        )
        corrupted = {**enc.inputs, "input_ids": ids}
    passes = record_passes(model, enc.inputs, corrupted, noise, settings.kinds)
    probs = torch.softmax(passes.clean_logits.float(), dim=-1)
    answer = int(probs.argmax()) if answer_id is None else int(answer_id)
    p_corr = float(answer_probs(passes.corrupted_logits, answer))
    return Prepared(
        enc, constraint, corrupted, noise, fit, text, answer, float(probs[answer]), p_corr, passes
    )


def run(
    loaded: LoadedModel,
    prep: Prepared,
    windows: Sequence[int],
    settings: TraceSettings,
    meta: dict | None = None,
) -> list[dict]:
    """One record per window, each with the IE of every kind: all of them traced at once, from
    the question's one clean and one corrupted pass."""
    enc = prep.enc
    positions = enc.positions_to_trace()
    n_layers = len(locate(loaded.model))
    clean_ids = enc.input_ids
    corr_ids = prep.corrupted["input_ids"][0].tolist()
    base = {
        **(meta or {}),
        "qid": enc.qid,
        "prompt": enc.prompt,
        "corrupted_constraint": prep.constraint,
        "corruption": settings.corruption,
        "corruption_fit": prep.fit,
        "replacement": prep.replacement,
        "window_style": settings.window_style,
        "input_ids": clean_ids,
        "corrupted_input_ids": corr_ids,
        "tokens": [enc.tokens[p] for p in positions],
        "roles": roles(enc, positions, prep.constraint),
        "positions": positions,
        "constraint_positions": enc.span_positions,
        "layers": list(range(n_layers)),
        "answer_token_id": prep.answer_id,
        "answer": loaded.tokenizer.decode([prep.answer_id]),
        "p_clean": prep.p_clean,
        "p_corr": prep.p_corr,
    }
    results, how = _restore(loaded, prep, settings, windows, positions)
    base["exactness"] = how.record()
    return [
        {
            **base,
            "window": int(window),
            "ie": {kind: results[(kind, window)].ie.tolist() for kind in settings.kinds},
        }
        for window in windows
    ]


def _restore(
    loaded: LoadedModel,
    prep: Prepared,
    settings: TraceSettings,
    windows: Sequence[int],
    positions: Sequence[int],
) -> tuple[dict, gate.Exactness]:
    """Every kind and window at `positions`, from the question's recorded passes: through the
    engine where tracing.gate trusts it on this model and input, else the exact reference."""
    return gate.trace(
        loaded.model,
        prep.enc.inputs,
        prep.corrupted,
        prep.answer_id,
        settings.kinds,
        windows,
        positions,
        settings.window_style,
        batch_size=settings.batch_size,
        noise=prep.noise,
        passes=prep.passes,
        exact=settings.exact,
    )


@torch.no_grad()
def sweep(
    loaded: LoadedModel, prep: Prepared, settings: TraceSettings, windows: Sequence[int]
) -> dict:
    """The window sweep (F2's "needs a larger window"): every kind restored at the corrupted
    constraint's tokens only, for each window in `windows`, from the question's recorded passes;
    the IE averaged over those tokens, per window and layer: {windows, ie: {kind: [w][layer]}}."""
    positions = prep.enc.span_positions[prep.constraint]
    results, how = _restore(loaded, prep, settings, windows, positions)
    return {
        "windows": [int(w) for w in windows],
        "exactness": how.record(),
        "ie": {
            kind: [results[(kind, w)].ie.mean(dim=0).tolist() for w in windows]
            for kind in settings.kinds
        },
    }
