"""Tiny random models for the tracing tests: LLaVA with a Llama and with a Phi text model, and a
plain Llama, each with a clean input, a corrupted one (two "constraint" tokens replaced) and the
clean run's top answer."""

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
        # Weights 10x the default scale, so that single restorations move p(answer) by far
        # more than the 1e-5 tolerance and equality checks between tracers mean something.
        initializer_range=0.2,
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
