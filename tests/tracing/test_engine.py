"""The fast engine equals the plain reference implementation (one forward pass per cell) on the
tiny random models of tests/support/tiny_models.py, with token replacement and with noise."""

from __future__ import annotations

import pytest

from mmtrace.tracing.engine import trace
from mmtrace.tracing.noise import gaussian_noise
from mmtrace.tracing.reference import trace_reference


def _constraint(first: int) -> list[int]:
    return [first, first + 1]


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
@pytest.mark.parametrize(("window", "style"), [(1, "centered"), (3, "centered"), (1, "radius")])
def test_fast_engine_equals_reference(setup, kind, window, style):
    model, clean, corrupted, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 2, seq))
    ref = trace_reference(model, clean, corrupted, answer, kind, positions, window, style)
    fast = trace(model, clean, corrupted, answer, kind, positions, window, style, batch_size=5)
    assert fast.p_clean == pytest.approx(ref.p_clean, abs=1e-6)
    assert fast.p_corr == pytest.approx(ref.p_corr, abs=1e-6)
    assert (fast.ie - ref.ie).abs().max().item() <= 1e-5
    assert ref.ie.abs().max().item() > 1e-3  # the effects compared are far above the tolerance


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
@pytest.mark.parametrize(("window", "style"), [(1, "centered"), (1, "radius")])
def test_fast_engine_equals_reference_under_noise(setup, kind, window, style):
    model, clean, _, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 2, seq))
    noise = gaussian_noise(model, _constraint(first), seed=1)
    ref = trace_reference(model, clean, clean, answer, kind, positions, window, style, noise=noise)
    fast = trace(
        model, clean, clean, answer, kind, positions, window, style, batch_size=5, noise=noise
    )
    assert fast.p_clean == pytest.approx(ref.p_clean, abs=1e-6)
    assert fast.p_corr == pytest.approx(ref.p_corr, abs=1e-6)
    assert (fast.ie - ref.ie).abs().max().item() <= 1e-5
