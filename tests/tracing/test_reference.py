"""The reference tracer on tiny random models: invariants, and one cell recomputed with raw
forward hooks written independently of mmtrace.tracing.hooks."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PhiConfig,
)

from mmtrace.tracing.hooks import capture, patch
from mmtrace.tracing.modules import locate
from mmtrace.tracing.reference import answer_prob, trace_reference
from mmtrace.tracing.windows import window_layers

IMAGE_TOKEN = 5
N_IMG = 4


def _text_cfg(arch: str):
    common = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    if arch == "llama":
        return LlamaConfig(num_key_value_heads=2, **common)
    return PhiConfig(partial_rotary_factor=0.5, **common)


def _llava(arch: str) -> LlavaForConditionalGeneration:
    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=16,
        patch_size=8,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=_text_cfg(arch),
        image_token_index=IMAGE_TOKEN,
        image_seq_length=N_IMG,
    )
    return LlavaForConditionalGeneration(cfg).eval()


def _inputs(multimodal: bool):
    text = [1] + ([IMAGE_TOKEN] * N_IMG if multimodal else []) + [10, 11, 12, 13, 14, 15, 16, 17]
    clean = torch.tensor([text])
    corrupted = clean.clone()
    first = len(text) - 6
    corrupted[0, first : first + 2] = torch.tensor([40, 41])  # the "constraint" tokens
    extra = {}
    if multimodal:
        torch.manual_seed(1)
        extra["pixel_values"] = torch.randn(1, 3, 16, 16)
    return {"input_ids": clean, **extra}, {"input_ids": corrupted, **extra}, first


def _llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(_text_cfg("llama")).eval()


MODELS = {
    "llava-llama": lambda: (_llava("llama"), True),
    "llava-phi": lambda: (_llava("phi"), True),
    "llama": lambda: (_llama(), False),
}


@pytest.fixture(params=sorted(MODELS))
def setup(request):
    model, mm = MODELS[request.param]()
    clean, corrupted, first = _inputs(mm)
    with torch.no_grad():
        answer = int(model(**clean).logits[0, -1].argmax())
    return model, clean, corrupted, first, answer


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


@pytest.mark.parametrize("kind", ["hidden", "mlp", "attn"])
@pytest.mark.parametrize(("window", "style"), [(1, "centered"), (3, "centered"), (1, "radius")])
def test_fast_engine_equals_reference(setup, kind, window, style):
    from mmtrace.tracing.engine import trace

    model, clean, corrupted, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 2, seq))
    ref = trace_reference(model, clean, corrupted, answer, kind, positions, window, style)
    fast = trace(model, clean, corrupted, answer, kind, positions, window, style, batch_size=5)
    assert fast.p_clean == pytest.approx(ref.p_clean, abs=1e-6)
    assert fast.p_corr == pytest.approx(ref.p_corr, abs=1e-6)
    assert (fast.ie - ref.ie).abs().max().item() <= 1e-5
