"""Which restorations the engine runs together, and the FLOPs an exact trace cannot avoid.

A cell is one restoration: a site kind, a window, a traced position t and a layer l, restoring
the clean output of `kind` at t in each layer of l's window. Everything before t and below the
window's lowest layer lo is the corrupted run's, so a cell has to recompute at most positions
t.. through layers lo.. (attending to the whole prefix), plus the LM head at the last position:
that is `minimal_flops`, the yardstick of the speed benchmark and of the FLOP test.

The engine batches cells of the same position t, whatever their kind and window; in a batch the
rows are ordered by lo and each row joins the batch at its own layer, so a batch executes each
row's work and nothing else (see tracing.engine for the joining layer and the last layer, where
it does less).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from mmtrace.tracing.windows import window_layers


@dataclass(frozen=True)
class Cell:
    kind: str
    window: int
    i: int  # index into the traced positions
    j: int  # index into the traced layers
    t: int  # the restored position
    restored: tuple[int, ...]  # the window's layers, ascending

    @property
    def low(self) -> int:
        return self.restored[0]


def cells(
    kinds: Sequence[str],
    windows: Sequence[int],
    positions: Sequence[int],
    layers: Sequence[int],
    first: int,
    n_layers: int,
    style: str,
) -> list[Cell]:
    """Every cell that has to run: positions before `first` (the first corrupted position)
    restore values equal to the corrupted ones, so those cells are exact zeros and not listed."""
    return [
        Cell(kind, w, i, j, t, tuple(window_layers(layer, w, n_layers, style)))
        for kind in kinds
        for w in windows
        for i, t in enumerate(positions)
        if t >= first
        for j, layer in enumerate(layers)
    ]


def runnable(todo: Iterable[Cell], n_layers: int, seq: int) -> list[Cell]:
    """The cells that have to run: a window of the last layer alone restores a position whose
    last-layer output nothing reads unless it is the last position, so elsewhere it is an exact
    zero too."""
    return [c for c in todo if c.low < n_layers - 1 or c.t == seq - 1]


def batches(todo: Iterable[Cell], batch_size: int, n_layers: int) -> list[list[Cell]]:
    """Cells grouped by position, each group ordered by lowest window layer and cut into
    near-equal batches of at most `batch_size` rows (latest positions first: they are the
    cheapest, so a failure shows early). Cells of the last layer alone (they run no layer,
    only the final norm and the LM head) get batches of their own."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    groups: dict[tuple[int, bool], list[Cell]] = defaultdict(list)
    for c in todo:
        groups[(c.t, c.low == n_layers - 1)].append(c)
    out = []
    for key in sorted(groups, reverse=True):
        group = sorted(groups[key], key=lambda c: (c.low, c.kind, c.window, c.j))
        size = math.ceil(len(group) / math.ceil(len(group) / batch_size))
        out += [group[k : k + size] for k in range(0, len(group), size)]
    return out


def _linear_flops(module: nn.Module) -> int:
    """FLOPs of one token through every nn.Linear of `module` (2 per multiply-add)."""
    return sum(
        2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear)
    )


def minimal_flops(model: nn.Module, layers: nn.ModuleList, todo: Iterable[Cell], seq: int) -> int:
    """Matrix-multiply FLOPs the cells cannot avoid: each cell runs positions t..seq-1 through
    layers lo.. (every linear map of the layer, and attention scores and mixing over the p + 1
    keys a query at position p sees), then the LM head at the last position. Counted as
    torch.utils.flop_counter counts them, so the two compare."""
    text = model.config.get_text_config()
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    per_layer = [_linear_flops(layer) for layer in layers]
    head = _linear_flops(model.get_output_embeddings())
    total = 0
    for c in todo:
        q = seq - c.t
        keys = q * c.t + q * (q + 1) // 2  # sum over p = t..seq-1 of (p + 1)
        total += sum(per_layer[c.low :]) * q + (len(layers) - c.low) * 4 * heads * head_dim * keys
        total += head
    return total


def _cpu_flash_flops(query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def counted_flops(fn) -> int:
    """FLOPs torch.utils.flop_counter counts while `fn()` runs, with the CPU flash-attention
    kernel (which it does not know) counted like SDPA."""
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()
