"""Tracing on every Hugging Face MLLM family (tests/support/families.py, docs/families.md): the
engine equals the exact reference on each family it traces (every kind, windows 1 and 3, token
replacement and noise), on effects >= 100x the tolerance; the regressions the families exposed
are caught (Qwen's M-RoPE positions, Gemma-3's per-layer rotary bases and sliding windows, a head
that is not the output embeddings); PaliGemma goes to the reference, Mllama is refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from support.families import FAMILIES, loaded, prepared
from support.families import positions as cells_of

from mmtrace.models import families
from mmtrace.models.lookup import locate
from mmtrace.models.masks import sliding_window
from mmtrace.tracing import gate
from mmtrace.tracing.engine import Unsupported, trace_many
from mmtrace.tracing.reference import trace_reference

KINDS = ("mlp", "attn", "hidden")
WINDOWS = (1, 3)
TOL = 1e-5
ENGINE = sorted(n for n, f in FAMILIES.items() if f.status == "engine")


def _compare(lm, prep, passes=None) -> tuple[float, float]:
    """(max |engine - reference|, max |reference IE|) over every kind and window."""
    positions = cells_of(prep)
    args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id)
    fast = trace_many(
        *args, KINDS, WINDOWS, positions, batch_size=7, noise=prep.noise,
        passes=passes or prep.passes,
    )  # fmt: skip
    diff = effect = 0.0
    for (kind, window), res in fast.items():
        ref = trace_reference(*args, kind, positions, window, noise=prep.noise)
        assert res.p_clean == pytest.approx(ref.p_clean, abs=1e-6)
        diff = max(diff, float((res.ie - ref.ie).abs().max()))
        effect = max(effect, float(ref.ie.abs().max()))
    return diff, effect


@pytest.mark.parametrize("name", ENGINE)
def test_engine_equals_reference(name):
    lm = loaded(name)
    prep = prepared(lm)
    assert prep.passes.obstacle is None
    diff, effect = _compare(lm, prep)
    assert effect >= 100 * TOL, effect  # a wrong engine would show
    assert diff <= TOL, diff


@pytest.mark.parametrize("name", ["qwen2_vl", "gemma3"])
def test_engine_equals_reference_under_noise(name):
    """Noise on the constraint's embeddings (Gemma's are scaled by sqrt(d): so is the noise)."""
    lm = loaded(name)
    prep = prepared(lm, "noise")
    diff, effect = _compare(lm, prep)
    assert effect >= 100 * TOL and diff <= TOL, (diff, effect)


def test_mrope_positions_matter_and_the_gate_catches_them():
    """The bug the issue found: 1-D positions t.. instead of Qwen2-VL's own 3-D ones give wrong
    numbers; the gate's check sees it and routes the model to the reference."""
    lm = loaded("qwen2_vl")
    prep = prepared(lm)
    assert prep.passes.positions.shape[0] == 3  # M-RoPE: temporal, height, width
    seq = prep.passes.seq
    wrong = replace(prep.passes, positions=torch.arange(seq).unsqueeze(0))
    diff, _ = _compare(lm, prep, wrong)
    assert diff >= 100 * TOL, diff
    args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id, KINDS, WINDOWS)
    check = gate.verify(*args, cells_of(prep), "centered", None, wrong)
    assert not check.passed and check.max_abs_diff >= 100 * TOL


def test_gemma3_windows_bind_and_layer_types_alternate():
    """The Gemma-3 test above is meaningful: its local layers' window is shorter than the
    prompt (so the engine's windowed path ran) and global layers sit between them (so a layer
    run at the wrong index would take the wrong rotary base and mask)."""
    lm = loaded("gemma3")
    prep = prepared(lm)
    blocks = locate(lm.model)
    windows = [sliding_window(blocks.module("attn", i)) for i in range(len(blocks))]
    assert windows[0] is not None and windows[0] < prep.passes.seq
    assert None in windows
    assert len(set(lm.model.config.text_config.layer_types)) == 2


def test_a_head_that_is_not_the_output_embeddings_is_not_traced_by_the_engine():
    """Gemma-3's multimodal forward ignores its text config's final soft-capping: where one is
    set, the engine's head (output embeddings, then the cap) differs from the model's logits,
    which the passes detect; the gate then traces with the reference."""
    lm = loaded("gemma3")
    lm.model.config.text_config.final_logit_softcapping = 1.0
    prep = prepared(lm)
    assert "logits" in prep.passes.obstacle
    positions = cells_of(prep)[-2:]
    args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id, ("mlp",), (1,), positions)
    res, how = gate.trace(*args, passes=prep.passes)
    assert how.path == gate.REFERENCE and "logits" in how.reason
    ref = trace_reference(*args[:4], "mlp", positions, 1)
    assert torch.equal(res[("mlp", 1)].p_restored, ref.p_restored)


@pytest.mark.parametrize("name", ["paligemma", "paligemma2"])
def test_paligemma_goes_to_the_exact_reference(name):
    """PaliGemma's image and prompt attend bidirectionally (prefix-LM): restoring a prompt
    token changes the positions before it, which the engine never recomputes. The passes name
    the non-causal mask, the engine refuses, and the gate's answer is the reference's (PaliGemma
    2 too, whose Gemma 2 text model soft-caps its attention and logits)."""
    lm = loaded(name)
    prep = prepared(lm)
    assert "not causal" in prep.passes.obstacle
    positions = cells_of(prep)
    args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id)
    with pytest.raises(Unsupported, match="not causal"):
        trace_many(*args, KINDS, WINDOWS, positions, passes=prep.passes)
    res, how = gate.trace(*args, ("mlp",), (1,), positions, passes=prep.passes)
    assert how.path == gate.REFERENCE and "PaliGemma" in how.reason
    ref = trace_reference(*args, "mlp", positions, 1)
    assert torch.equal(res[("mlp", 1)].p_restored, ref.p_restored)
    # the effect is real, and restoring a position before the constraint moves p, which in
    # a causal model is exactly 0 (float rounding: ~1e-8): the prefix reads later positions
    assert ref.ie.abs().max() >= 100 * TOL
    assert ref.ie[0].abs().max() >= 1e-6


def test_mllama_is_refused_with_the_feature_named():
    lm = loaded("mllama")
    with pytest.raises(families.UnsupportedModel, match="cross-attention"):
        families.check(lm.model)
    with pytest.raises(families.UnsupportedModel, match="Mllama"):
        prepared(lm)


def test_the_gate_trusts_the_engine_after_its_check():
    lm = loaded("qwen2_5_vl")
    prep = prepared(lm)
    args = (lm.model, prep.enc.inputs, prep.corrupted, prep.answer_id, KINDS, WINDOWS)
    res, how = gate.trace(*args, cells_of(prep), passes=prep.passes)
    assert how.path == gate.ENGINE and how.reason is None
    assert how.check.passed and how.check.max_effect >= 100 * TOL
    assert how.check.cells == len(KINDS) * len(WINDOWS) * 9
    forced, exact = gate.trace(*args, cells_of(prep), passes=prep.passes, exact=True)
    assert exact.path == gate.REFERENCE and exact.reason == "forced (exact)"
    for key, r in res.items():
        assert (r.ie - forced[key].ie).abs().max() <= TOL
