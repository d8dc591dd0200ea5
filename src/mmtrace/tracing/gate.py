"""Never silently wrong: the engine is trusted on a model only after it has matched the exact
reference there, and otherwise the exact reference traces.

`tracing.engine` recomputes restored cells from their position on, through the layers they
need, with the model's own position ids and a causal (sliding-window) mask of its own. That is
exact for every decoder it was built for, and `engine.record_passes` names the inputs where it
provably is not (a non-causal mask at the traced positions, such as PaliGemma's bidirectional
prefix; a cache that dropped positions; soft-capped attention; a head that is not the output
embeddings). For anything else a model may do that the engine does not know of, `verify` runs
the engine and the reference (`tracing.reference`: one full forward of the model per cell, the
release's scheme) on a few cells of the model's first traced question: the corrupted position,
a middle one and the last, at the first, middle and last layer, for every kind and window
asked. Where they differ by more than the tolerance (1e-5 in float32), the model is routed to
the reference for the rest of the process, and the record says so.

`trace` is the one entry point: it refuses models no analysis supports
(`models.families.refusal`), forces the reference where `exact` is set (`--exact`,
`tracing.exact`), and returns the results with an `Exactness` that every trace record stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from weakref import WeakKeyDictionary

import torch
from torch import nn

from mmtrace.models import families
from mmtrace.models.lookup import locate
from mmtrace.tracing.engine import Passes, Unsupported, record_passes, trace_many
from mmtrace.tracing.noise import EmbeddingNoise
from mmtrace.tracing.reference import TraceResult, trace_reference

ENGINE, REFERENCE = "engine", "reference"


@dataclass(frozen=True)
class Check:
    """The engine against the reference on a few cells of one model: the largest difference
    and the largest effect (|IE|) among them, against the tolerance."""

    cells: int
    max_abs_diff: float
    max_effect: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance


@dataclass(frozen=True)
class Exactness:
    """How a trace was computed: `path` (engine or reference), `reason` (why the reference,
    if it was), and the model's `check` (None where none ran)."""

    path: str
    reason: str | None = None
    check: Check | None = None

    def record(self) -> dict:
        out = {"path": self.path, "reason": self.reason, "check": None}
        if self.check is not None:
            out["check"] = {**asdict(self.check), "passed": self.check.passed}
        return out


_CHECKED: WeakKeyDictionary[nn.Module, Check] = WeakKeyDictionary()


def tolerance(model: nn.Module) -> float:
    """How far engine and reference may differ in p: float32 rounding, or half precision's."""
    dtype = next(model.parameters()).dtype
    return 1e-5 if dtype == torch.float32 else 2e-2


def sample_cells(
    positions: Sequence[int], first: int, n_layers: int
) -> tuple[list[int], list[int]]:
    """The positions (the first traced one at or after the corruption, a middle one, the last)
    and layers (first, middle, last) the check compares."""
    after = [p for p in positions if p >= first] or list(positions)
    picks = sorted({after[0], after[len(after) // 2], after[-1]})
    return picks, sorted({0, n_layers // 2, n_layers - 1})


@torch.no_grad()
def verify(
    model: nn.Module,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kinds: Sequence[str],
    windows: Sequence[int],
    positions: Sequence[int],
    style: str,
    noise: EmbeddingNoise | None,
    passes: Passes,
) -> Check:
    """Engine and reference on the sampled cells of every kind and window (raises
    engine.Unsupported where the engine cannot run)."""
    pos, layers = sample_cells(positions, passes.first, len(locate(model)))
    fast = trace_many(
        model, clean, corrupted, answer_id, kinds, windows, pos, style, layers,
        noise=noise, passes=passes,
    )  # fmt: skip
    diff = effect = 0.0
    for (kind, window), res in fast.items():
        ref = trace_reference(
            model, clean, corrupted, answer_id, kind, pos, window, style, layers, noise
        )
        diff = max(diff, float((res.p_restored - ref.p_restored).abs().max()))
        diff = max(diff, abs(res.p_clean - ref.p_clean), abs(res.p_corr - ref.p_corr))
        effect = max(effect, float(ref.ie.abs().max()))
    return Check(len(fast) * len(pos) * len(layers), diff, effect, tolerance(model))


def reference_many(
    model: nn.Module,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kinds: Sequence[str],
    windows: Sequence[int],
    positions: Sequence[int],
    style: str,
    noise: EmbeddingNoise | None,
) -> dict[tuple[str, int], TraceResult]:
    """`trace_many`'s results from the reference, one forward pass per cell."""
    return {
        (k, w): trace_reference(
            model, clean, corrupted, answer_id, k, positions, w, style, noise=noise
        )
        for k in kinds
        for w in windows
    }


def trace(
    model: nn.Module,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kinds: Sequence[str],
    windows: Sequence[int],
    positions: Sequence[int],
    style: str = "centered",
    batch_size: int = 64,
    noise: EmbeddingNoise | None = None,
    passes: Passes | None = None,
    exact: bool = False,
) -> tuple[dict[tuple[str, int], TraceResult], Exactness]:
    """Every kind and window at `positions`, from the engine where it is verified on this model
    and can trace this input, else from the reference; with how it was computed."""
    families.check(model)
    kinds = tuple(dict.fromkeys(kinds))

    def reference(why: str, check: Check | None = None):
        res = reference_many(
            model, clean, corrupted, answer_id, kinds, windows, positions, style, noise
        )
        return res, Exactness(REFERENCE, why, check)

    if exact:
        return reference("forced (exact)")
    if passes is None:
        passes = record_passes(model, clean, corrupted, noise, kinds)
    if passes.obstacle is not None:
        return reference(f"{families.family(model)}: {passes.obstacle}", _CHECKED.get(model))
    check = _CHECKED.get(model)
    try:
        if check is None:
            check = verify(
                model, clean, corrupted, answer_id, kinds, windows, positions, style, noise,
                passes,
            )  # fmt: skip
            _CHECKED[model] = check
        if not check.passed:
            return reference(
                f"{families.family(model)}: the engine differed from the reference by "
                f"{check.max_abs_diff:.3g} on the check",
                check,
            )
        res = trace_many(
            model, clean, corrupted, answer_id, kinds, windows, positions, style,
            batch_size=batch_size, noise=noise, passes=passes,
        )  # fmt: skip
    except Unsupported as exc:
        return reference(str(exc), check)
    return res, Exactness(ENGINE, None, check)
