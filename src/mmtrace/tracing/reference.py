"""The plain causal-trace implementation: one full forward pass per (position, layer) cell.

This is the scheme of the authors' released script. It is slow and kept on purpose, as the ground
truth that the fast engine must match (<= 1e-5) and the baseline the speed benchmark compares
against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmtrace.models.hooks import capture, patch
from mmtrace.models.lookup import locate
from mmtrace.models.scoring import answer_prob
from mmtrace.tracing.noise import EmbeddingNoise, applying
from mmtrace.tracing.windows import window_layers


@dataclass
class TraceResult:
    kind: str
    positions: list[int]
    layers: list[int]
    p_clean: float
    p_corr: float
    p_restored: torch.Tensor  # [positions, layers]

    @property
    def ie(self) -> torch.Tensor:
        """Indirect effect: p_restored - p_corr."""
        return self.p_restored - self.p_corr


@torch.no_grad()
def trace_reference(
    model,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kind: str,
    positions: Sequence[int],
    window: int = 1,
    style: str = "centered",
    layers: Sequence[int] | None = None,
    noise: EmbeddingNoise | None = None,
) -> TraceResult:
    """Restore `kind` at one position and a window of layers around each layer, cell by cell.

    `clean` and `corrupted` are single-example model inputs of the same length (the corruption
    replaces constraint tokens with others of equal token length). With `noise`, the corrupted run
    is `corrupted` (which may then equal `clean`) with the noise added to its input embeddings."""
    if clean["input_ids"].shape != corrupted["input_ids"].shape:
        raise ValueError("clean and corrupted inputs must have the same shape")
    blocks = locate(model)
    n = len(blocks)
    layers = list(range(n)) if layers is None else list(layers)
    with capture(blocks, kind, range(n)) as cache:
        p_clean = answer_prob(model, clean, answer_id)
    out = torch.zeros(len(positions), len(layers), dtype=torch.float64)
    with applying(model, noise):
        p_corr = answer_prob(model, corrupted, answer_id)
        for i, t in enumerate(positions):
            for j, layer in enumerate(layers):
                restore = {w: [t] for w in window_layers(layer, window, n, style)}
                with patch(blocks, kind, restore, cache):
                    out[i, j] = answer_prob(model, corrupted, answer_id)
    return TraceResult(kind, list(positions), layers, p_clean, p_corr, out)
