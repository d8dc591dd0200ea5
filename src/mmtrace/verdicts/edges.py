"""Knife-edges: a verdict decided within a declared margin of its threshold is `fragile`.

Every comparison a claim rule makes against a threshold (a p-value against alpha, a share
against uniform, an efficacy difference against 0, the best layer against the runner-up) goes
through `above`, `below` or `best`. Each records the comparison and whether its value lies
within the margin of config `claims.margins` for its kind: the distance that rounding on
another CPU, amplified by the analyses (Adam steps of an edit, an argmax over layers, a
near-tied answer), could plausibly cover. `fragile` then re-decides the rows once per
near-threshold comparison with that comparison's outcome flipped; a row whose verdict changes
is fragile, and names the comparison. Nothing is re-run: the rules read the run's summaries.

Outside `recording()` the functions are plain comparisons, so a rule can be called directly.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mmtrace.config import Tolerance


@dataclass(frozen=True)
class Edge:
    index: int
    what: str
    kind: str
    value: float
    threshold: float
    near: bool

    def describe(self) -> str:
        return f"{self.what}: {self.value:.4g} vs {self.threshold:.4g} ({self.kind})"


@dataclass
class _Recorder:
    margins: Mapping[str, Tolerance]
    flip: int | None = None
    edges: list[Edge] = field(default_factory=list)


_ACTIVE: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("edges", default=None)


def _record(kind: str, what: str, value: float, threshold: float, outcome: bool) -> bool:
    rec = _ACTIVE.get()
    if rec is None:
        return outcome
    margin = rec.margins.get(kind)
    if margin is None:
        raise KeyError(f"claims.margins has no entry for the kind {kind!r} ({what})")
    near = abs(value - threshold) <= margin.abs + margin.rel * abs(threshold)
    edge = Edge(len(rec.edges), what, kind, float(value), float(threshold), near)
    rec.edges.append(edge)
    return (not outcome) if rec.flip == edge.index else outcome


def above(kind: str, what: str, value: float | None, threshold: float) -> bool:
    """value > threshold (False for a missing value, which is no edge)."""
    if value is None:
        return False
    return _record(kind, what, value, threshold, value > threshold)


def below(kind: str, what: str, value: float | None, threshold: float) -> bool:
    """value < threshold (False for a missing value)."""
    if value is None:
        return False
    return _record(kind, what, value, threshold, value < threshold)


def at_least(kind: str, what: str, value: float | None, threshold: float) -> bool:
    """value >= threshold (False for a missing value)."""
    if value is None:
        return False
    return _record(kind, what, value, threshold, value >= threshold)


def at_most(kind: str, what: str, value: float | None, threshold: float) -> bool:
    """value <= threshold (False for a missing value)."""
    if value is None:
        return False
    return _record(kind, what, value, threshold, value <= threshold)


def best(kind: str, what: str, candidates: Sequence[int], values: Sequence[float]) -> int | None:
    """The candidate with the largest value (the first on a tie), or None for none. Where a
    runner-up exists, the gap to it is an edge: flipped, the runner-up wins."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: (-values[c], c))
    if len(ranked) == 1:
        return ranked[0]
    first, second = ranked[0], ranked[1]
    gap = values[first] - values[second]
    keep = _record(kind, f"{what} (l{first} over l{second})", gap, 0.0, True)
    return first if keep else second


@contextlib.contextmanager
def recording(margins: Mapping[str, Tolerance], flip: int | None = None) -> Iterator[_Recorder]:
    rec = _Recorder(margins, flip)
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)


def fragile(
    decide: Callable[[], list], margins: Mapping[str, Tolerance]
) -> tuple[list, dict[tuple[str, str], list[str]]]:
    """`decide()`'s rows, and per (claim, model) of a fragile row the near-threshold
    comparisons whose flip changes its verdict."""
    with recording(margins) as rec:
        rows = decide()
    out: dict[tuple[str, str], list[str]] = {}
    for edge in rec.edges:
        if not edge.near:
            continue
        with recording(margins, flip=edge.index):
            flipped = {(r.claim, r.model): r.verdict for r in decide()}
        for r in rows:
            if flipped.get((r.claim, r.model), r.verdict) != r.verdict:
                out.setdefault((r.claim, r.model), []).append(edge.describe())
    return rows, out
