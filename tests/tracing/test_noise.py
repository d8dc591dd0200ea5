"""Gaussian-noise corruption: the noise itself, its invariants under the reference tracer, and the
fast engine equal to the reference when the corruption is noise instead of replaced tokens."""

from __future__ import annotations

import pytest
import torch

from mmtrace.models.hooks import capture, patch
from mmtrace.models.lookup import locate
from mmtrace.models.scoring import answer_prob
from mmtrace.tracing.noise import applying, gaussian_noise
from mmtrace.tracing.reference import trace_reference


def _constraint(first: int) -> list[int]:
    return [first, first + 1]  # the positions the token corruption replaces


def test_noise_is_deterministic_for_a_seed(setup):
    model, _, _, first, _ = setup
    a = gaussian_noise(model, _constraint(first), seed=3)
    b = gaussian_noise(model, _constraint(first), seed=3)
    c = gaussian_noise(model, _constraint(first), seed=4)
    hidden = model.get_input_embeddings().weight.shape[1]
    assert a.values.shape == (len(_constraint(first)), hidden)
    assert torch.equal(a.values, b.values)
    assert not torch.equal(a.values, c.values)
    # sigma is proportional to `scale`: the same seed draws the same standard normals.
    half = gaussian_noise(model, _constraint(first), scale=1.5, seed=3)
    assert torch.allclose(half.values * 2, a.values, rtol=1e-6)


def test_restoring_every_noised_position_at_layer_0_gives_the_clean_run(setup):
    model, clean, _, first, answer = setup
    blocks = locate(model)
    seq = clean["input_ids"].shape[1]
    # Noise every position from the constraint on: then nothing after the noise reads a noised
    # key at layer 0 without that position being restored too.
    noised = list(range(first, seq))
    noise = gaussian_noise(model, noised)
    with torch.no_grad():
        with capture(blocks, "hidden", range(len(blocks))) as cache:
            p_clean = answer_prob(model, clean, answer)
        with applying(model, noise):
            p_corr = answer_prob(model, clean, answer)
            with patch(blocks, "hidden", {0: noised}, cache):
                p = answer_prob(model, clean, answer)
    assert p_corr != pytest.approx(p_clean, abs=1e-9)  # the noise matters
    assert abs(p - p_clean) <= 1e-6


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_restoring_before_the_noise_changes_nothing(setup, kind):
    model, clean, _, first, answer = setup
    noise = gaussian_noise(model, _constraint(first))
    res = trace_reference(model, clean, clean, answer, kind, [first - 1], window=3, noise=noise)
    assert torch.allclose(res.ie, torch.zeros_like(res.ie), atol=1e-6)
    assert res.p_clean != pytest.approx(res.p_corr, abs=1e-9)
