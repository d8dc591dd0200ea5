"""The reference tracer on tiny random models: invariants, and one cell recomputed with raw
forward hooks written independently of mmtrace.models.hooks. The tiny models and inputs (the
`setup` fixture) are in conftest.py."""

from __future__ import annotations

import pytest
import torch

from mmtrace.models.hooks import capture, patch
from mmtrace.models.lookup import locate
from mmtrace.models.scoring import answer_prob
from mmtrace.tracing.reference import trace_reference
from mmtrace.tracing.windows import window_layers


def test_locate_finds_the_text_decoder(setup):
    model, *_ = setup
    blocks = locate(model)
    assert len(blocks) == 4  # the text model's layers, not the vision tower's 2
    for kind in ("hidden", "mlp", "attn"):
        assert blocks.module(kind, 0) is not None


def test_restoring_nothing_gives_the_corrupted_run(setup):
    model, clean, corrupted, _, answer = setup
    blocks = locate(model)
    with torch.no_grad():
        with capture(blocks, "hidden", range(len(blocks))) as cache:
            model(**clean)
        p_corr = answer_prob(model, corrupted, answer)
        with patch(blocks, "hidden", {}, cache):
            assert answer_prob(model, corrupted, answer) == p_corr


@pytest.mark.parametrize("layer", [0, 2, 3])
def test_restoring_the_whole_stream_after_the_corruption_gives_the_clean_run(setup, layer):
    model, clean, corrupted, first, answer = setup
    blocks = locate(model)
    seq = clean["input_ids"].shape[1]
    with torch.no_grad():
        with capture(blocks, "hidden", range(len(blocks))) as cache:
            p_clean = answer_prob(model, clean, answer)
        with patch(blocks, "hidden", {layer: list(range(first, seq))}, cache):
            p = answer_prob(model, corrupted, answer)
    assert abs(p - p_clean) <= 1e-6


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_restoring_before_the_corruption_changes_nothing(setup, kind):
    model, clean, corrupted, first, answer = setup
    res = trace_reference(model, clean, corrupted, answer, kind, positions=[first - 1], window=3)
    assert torch.allclose(res.ie, torch.zeros_like(res.ie), atol=1e-6)
    assert res.p_clean != pytest.approx(res.p_corr, abs=1e-9)  # the corruption matters


def _raw_hook_cell(model, clean, corrupted, answer, layer, pos, kind):
    """One restored cell computed with plain register_forward_hook on known module paths."""
    lm = model.model.language_model if hasattr(model.model, "language_model") else model.model
    block = lm.layers[layer]
    mod = {"hidden": block, "mlp": block.mlp, "attn": block.self_attn}[kind]
    saved = {}

    def grab(_m, _i, out):
        saved["v"] = (out[0] if isinstance(out, tuple) else out).clone()

    h = mod.register_forward_hook(grab)
    with torch.no_grad():
        model(**clean)
    h.remove()

    def put(_m, _i, out):
        t = (out[0] if isinstance(out, tuple) else out).clone()
        t[0, pos] = saved["v"][0, pos]
        return (t, *out[1:]) if isinstance(out, tuple) else t

    h = mod.register_forward_hook(put)
    with torch.no_grad():
        p = torch.softmax(model(**corrupted).logits[0, -1].float(), -1)[answer].item()
    h.remove()
    return p


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
def test_reference_matches_raw_hooks(setup, kind):
    model, clean, corrupted, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = [first, first + 1, seq - 1]
    res = trace_reference(model, clean, corrupted, answer, kind, positions, window=1)
    for i, t in enumerate(positions):
        for layer in range(4):
            raw = _raw_hook_cell(model, clean, corrupted, answer, layer, t, kind)
            assert abs(res.p_restored[i, layer].item() - raw) <= 1e-6


def test_windows():
    assert window_layers(5, 3, 32, "centered") == [4, 5, 6]
    assert window_layers(0, 3, 32, "centered") == [0, 1]
    assert window_layers(5, 1, 32, "radius") == [4, 5, 6]
    assert window_layers(31, 2, 32, "radius") == [29, 30, 31]
    assert window_layers(5, 1, 32, "centered") == [5]
    with pytest.raises(ValueError):
        window_layers(5, 1, 32, "wide")
