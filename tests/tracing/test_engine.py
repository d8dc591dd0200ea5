"""The fast engine equals the plain reference implementation (one forward pass per cell) on the
tiny random models of support/tiny_models.py (LLaVA-Llama with grouped-query attention, LLaVA-Phi
with a parallel block and partial rotary, a Llama LM), for every kind, windows 1 and 3, both
window styles, token replacement and noise, through both attention paths; the comparisons can
fail (the effects are >= 100x the tolerance); and it executes no more FLOPs than an exact trace
needs."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import MODELS, inputs

from mmtrace.models.lookup import locate
from mmtrace.tracing import batching
from mmtrace.tracing.engine import record_passes, trace, trace_many
from mmtrace.tracing.noise import gaussian_noise
from mmtrace.tracing.reference import trace_reference

KINDS = ("mlp", "attn", "hidden")
WINDOWS = (1, 3)
TOL = 1e-5


def _constraint(first: int) -> list[int]:
    return [first, first + 1]


def _corruption(setup, how: str):
    model, clean, corrupted, first, answer = setup
    if how == "noise":
        return clean, gaussian_noise(model, _constraint(first), seed=1)
    return corrupted, None


@pytest.mark.parametrize("how", ["replace", "noise"])
@pytest.mark.parametrize("style", ["centered", "radius"])
def test_engine_equals_reference(setup, how, style):
    """Through the fused attention kernel (where torch has one) and the eager path."""
    model, clean, _, first, answer = setup
    corrupted, noise = _corruption(setup, how)
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 2, seq))
    fast = {
        fused: trace_many(
            model,
            clean,
            corrupted,
            answer,
            KINDS,
            WINDOWS,
            positions,
            style,
            batch_size=5,
            noise=noise,
            fused=fused,
        )  # fmt: skip
        for fused in (None, False)
    }
    for (kind, window), res in fast[None].items():
        ref = trace_reference(
            model, clean, corrupted, answer, kind, positions, window, style, noise=noise
        )
        # the effects compared are far above the tolerance, so a wrong engine would fail
        assert ref.ie.abs().max().item() >= 100 * TOL, (kind, window)
        for path in fast.values():
            res = path[(kind, window)]
            assert res.kind == kind and res.positions == positions and res.layers == ref.layers
            assert res.p_clean == pytest.approx(ref.p_clean, abs=1e-6)
            assert res.p_corr == pytest.approx(ref.p_corr, abs=1e-6)
            assert (res.ie - ref.ie).abs().max().item() <= TOL


def test_one_call_for_every_kind_and_window_equals_one_call_each(setup):
    model, clean, corrupted, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = [seq - 1, first, first - 1, first + 1]  # any order
    layers = [3, 0, 2]
    many = trace_many(
        model, clean, corrupted, answer, KINDS, WINDOWS, positions, layers=layers, batch_size=4
    )
    for kind in KINDS:
        for window in WINDOWS:
            one = trace(
                model, clean, corrupted, answer, kind, positions, window, layers=layers,
                batch_size=64,
            )  # fmt: skip
            assert one.layers == many[(kind, window)].layers == layers
            assert (one.p_restored - many[(kind, window)].p_restored).abs().max() <= 1e-6


def test_recorded_passes_can_be_reused(setup):
    model, clean, corrupted, first, answer = setup
    positions = list(range(first, clean["input_ids"].shape[1]))
    passes = record_passes(model, clean, corrupted)
    assert passes.first == first
    again = trace_many(model, None, None, answer, KINDS, [1], positions, passes=passes)
    fresh = trace_many(model, clean, corrupted, answer, KINDS, [1], positions)
    for key, res in fresh.items():
        assert torch.equal(res.p_restored, again[key].p_restored)


@pytest.mark.parametrize("kind", KINDS)
def test_a_window_of_the_last_layer_alone_matters_only_at_the_last_position(setup, kind):
    """The engine fills these cells with p_corr without running them (an exact zero)."""
    model, clean, corrupted, first, answer = setup
    n, seq = len(locate(model)), clean["input_ids"].shape[1]
    ref = trace_reference(
        model, clean, corrupted, answer, kind, [first, seq - 1], 1, layers=[n - 1]
    )
    assert ref.ie[0, 0].item() == pytest.approx(0.0, abs=1e-7)
    fast = trace(model, clean, corrupted, answer, kind, [first, seq - 1], 1, layers=[n - 1])
    assert (fast.ie - ref.ie).abs().max().item() <= TOL


@pytest.mark.parametrize("name", sorted(MODELS))
def test_executed_flops_are_at_most_the_minimum(name):
    """Counted FLOPs (torch.utils.flop_counter; counts are deterministic) of a whole trace are
    within 1.1x the minimum: each cell's positions t.. through layers lo.. attending to the
    full prefix and the LM head at the last position, plus one clean and one corrupted pass."""
    build, multimodal = MODELS[name]
    model = build()
    clean, corrupted, first = inputs(multimodal)
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 1, seq))
    n = len(locate(model))
    with torch.no_grad():
        answer = int(model(**clean).logits[0, -1].argmax())
        one_pass = batching.counted_flops(lambda: model(**clean, logits_to_keep=1))
    cells = batching.cells(KINDS, WINDOWS, positions, range(n), first, n, "centered")
    minimum = batching.minimal_flops(model, locate(model).layers, cells, seq) + 2 * one_pass
    executed = batching.counted_flops(
        lambda: trace_many(model, clean, corrupted, answer, KINDS, WINDOWS, positions)
    )
    assert executed <= 1.1 * minimum
    assert executed >= 0.5 * minimum  # the count sees the work (a guard on the guard)


def test_batches_hold_one_position_ordered_by_lowest_window_layer():
    cells = batching.cells(KINDS, WINDOWS, range(10, 14), range(6), 11, 6, "centered")
    assert {c.t for c in cells} == {11, 12, 13}  # position 10 is before the corruption
    plan = batching.batches(batching.runnable(cells, 6, 14), 7, 6)
    assert all(len({c.t for c in b}) == 1 and len(b) <= 7 for b in plan)
    assert all([c.low for c in b] == sorted(c.low for c in b) for b in plan)
    assert sorted(id(c) for b in plan for c in b) == sorted(
        id(c) for c in batching.runnable(cells, 6, 14)
    )
