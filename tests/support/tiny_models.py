"""Tiny random models shared by the tracing and transfer tests: LLaVA with a Llama text model
(grouped-query attention), LLaVA with a Phi text model (parallel block, partial rotary), and a
plain Llama LM, plus clean and corrupted inputs laid out like LLaVA's (BOS, image tokens, text)."""

from __future__ import annotations

import torch

from mmtrace.models import random

IMAGE_TOKEN = 5
N_IMG = 4
N_LAYERS = 4
# 10x the default initialisation scale, so single restorations and contributions move far more
# than the 1e-5 tolerances and equality checks mean something.
TEXT = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_heads=4,
    max_positions=64,
    initializer_range=0.2,
)


def llava(arch: str, n_layers: int = N_LAYERS):
    """LLaVA with a Llama text model (4 query heads share 2 key/value heads) or a Phi one."""
    kv = dict(num_kv_heads=2) if arch == "llama" else {}
    return random.llava(
        arch,
        text=dict(num_layers=n_layers, **TEXT, **kv),
        vision=dict(image_size=16, patch_size=8),
        image_token=IMAGE_TOKEN,
    )


def llama(n_layers: int = N_LAYERS):
    return random.llama(num_layers=n_layers, num_kv_heads=2, **TEXT)


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
