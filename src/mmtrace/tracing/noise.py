"""Gaussian-noise corruption: ROME's method for LLMs, a baseline here beside token replacement.

ROME adds noise of 3x the standard deviation of subject-token embeddings, measured over a text
corpus. Here sigma is `scale` times the standard deviation of the model's whole input embedding
table, times the factor the embedding module scales its rows by (Gemma's sqrt(d); 1 elsewhere),
so it is relative to the embeddings the language model reads: it needs no corpus, is fixed by
the checkpoint alone, and is the same for every question.

The noise is added to the output of `model.get_input_embeddings()`. In LLaVA the image features
are scattered into `inputs_embeds` after that module runs, so noise at image-token positions is
overwritten; constraint tokens are text tokens, where it lands as intended.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from mmtrace.models.hooks import output_hook
from mmtrace.models.lookup import embedding_scale


@dataclass(frozen=True)
class EmbeddingNoise:
    """Noise added to the token embeddings at `positions`; `values` is [len(positions), hidden]."""

    positions: list[int]
    values: torch.Tensor

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[0] != len(self.positions):
            raise ValueError("values must have one row per noised position")
        if len(set(self.positions)) != len(self.positions):
            raise ValueError("noised positions must be distinct")


def gaussian_noise(
    model: nn.Module, positions: Sequence[int], scale: float = 3.0, seed: int = 0
) -> EmbeddingNoise:
    """Noise N(0, sigma^2) with sigma = scale * std(input embedding matrix) * the embedding
    module's own scale, drawn on the CPU from a generator seeded with `seed`, so the same seed
    gives the same noise on any device."""
    weight = model.get_input_embeddings().weight
    sigma = scale * weight.detach().float().std().item() * embedding_scale(model)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    values = torch.randn(len(positions), weight.shape[1], generator=gen) * sigma
    return EmbeddingNoise([int(p) for p in positions], values)


@contextmanager
def applying(model: nn.Module, noise: EmbeddingNoise | None) -> Iterator[None]:
    """Add `noise` to the input embeddings of every forward pass inside the block (every batch row
    gets the same noise); `None` does nothing."""
    if noise is None:
        yield
        return
    pos = torch.as_tensor(noise.positions)

    def hook(_m, _i, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, pos] += noise.values.to(out.device, out.dtype)
        return out

    with output_hook(model.get_input_embeddings(), hook):
        yield
