"""Tiny random models shared by the tracing and transfer tests: LLaVA with a Llama text model
(grouped-query attention), LLaVA with a Phi text model (parallel block, partial rotary), and a
plain Llama LM, plus clean and corrupted inputs laid out like LLaVA's (BOS, image tokens, text)."""

from __future__ import annotations

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
N_LAYERS = 4


def text_config(arch: str, n_layers: int = N_LAYERS):
    common = dict(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        max_position_embeddings=64,
        # 10x the default scale, so single restorations and contributions move far more than
        # the 1e-5 tolerances and equality checks mean something.
        initializer_range=0.2,
    )
    if arch == "llama":  # grouped-query attention: 4 query heads share 2 key/value heads
        return LlamaConfig(num_key_value_heads=2, **common)
    return PhiConfig(partial_rotary_factor=0.5, **common)


def llava(arch: str, n_layers: int = N_LAYERS) -> LlavaForConditionalGeneration:
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
        text_config=text_config(arch, n_layers),
        image_token_index=IMAGE_TOKEN,
        image_seq_length=N_IMG,
    )
    return LlavaForConditionalGeneration(cfg).eval()


def llama(n_layers: int = N_LAYERS) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(text_config("llama", n_layers)).eval()


# name -> (builder, multimodal?)
MODELS = {
    "llava-llama": (lambda: llava("llama"), True),
    "llava-phi": (lambda: llava("phi"), True),
    "llama": (llama, False),
}


def inputs(multimodal: bool) -> tuple[dict, dict, int]:
    """Clean and corrupted inputs of equal length; the two tokens from `first` on are the
    "constraint", replaced in the corrupted run (the image, if any, stays)."""
    text = [1] + ([IMAGE_TOKEN] * N_IMG if multimodal else []) + [10, 11, 12, 13, 14, 15, 16, 17]
    clean = torch.tensor([text])
    corrupted = clean.clone()
    first = len(text) - 6
    corrupted[0, first : first + 2] = torch.tensor([40, 41])
    extra = {}
    if multimodal:
        gen = torch.Generator().manual_seed(1)
        extra["pixel_values"] = torch.randn(1, 3, 16, 16, generator=gen)
    return {"input_ids": clean, **extra}, {"input_ids": corrupted, **extra}, first
