"""Capturing and patching block outputs: the one place tracing touches module internals.

Decoder layers return tensors in transformers 5 and attention modules return tuples; both are
handled by acting on the first element.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch

from mmtrace.tracing.modules import DecoderBlocks


@contextmanager
def removing(handles: list) -> Iterator[None]:
    """Remove the hook handles when the block exits, whatever happens inside it."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _replace_first(output, new: torch.Tensor):
    return (new, *output[1:]) if isinstance(output, tuple) else new


@contextmanager
def capture(blocks: DecoderBlocks, kind: str, layers: Sequence[int]) -> Iterator[dict]:
    """Record the output of `kind` at `layers` during the forward passes inside the block."""
    cache: dict[int, torch.Tensor] = {}
    handles = []
    for layer in layers:

        def hook(_m, _i, out, layer=layer):
            cache[layer] = _first(out).detach().clone()

        handles.append(blocks.module(kind, layer).register_forward_hook(hook))
    with removing(handles):
        yield cache


@contextmanager
def patch(
    blocks: DecoderBlocks,
    kind: str,
    positions_by_layer: Mapping[int, Sequence[int]],
    clean: Mapping[int, torch.Tensor],
) -> Iterator[None]:
    """Overwrite the output of `kind` at the given layers and token positions with the clean
    run's values (every batch row gets the same restoration)."""
    handles = []
    for layer, positions in positions_by_layer.items():
        if not positions:
            continue
        pos = torch.as_tensor(list(positions))

        def hook(_m, _i, out, layer=layer, pos=pos):
            hidden = _first(out).clone()
            src = clean[layer].to(hidden.dtype)
            hidden[:, pos] = src[:, pos].expand(hidden.shape[0], -1, -1)
            return _replace_first(out, hidden)

        handles.append(blocks.module(kind, layer).register_forward_hook(hook))
    with removing(handles):
        yield
