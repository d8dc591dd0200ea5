"""Switching the attention implementation of a text decoder: the one place the package touches
`_attn_implementation` (a grep test enforces it).

Two methods need another attention path than the checkpoint's (usually SDPA) for a few forward
passes: Eq. 1 needs `eager`, the only path that materialises attention probabilities, and the
tracing engine routes attention through its own shared-prefix function. Both go through
`attention_implementation`, which sets the implementation on every configuration object the
decoder's modules hold (mask creation reads the same objects as the attention layers) and
restores each one afterwards, whatever happens inside the block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface


def register(name: str, attention: Callable, mask: Callable) -> None:
    """Make `name` an attention implementation transformers can dispatch to: `attention` is
    called like transformers' eager attention, `mask` builds (or skips) the attention mask."""
    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, mask)


@contextmanager
def attention_implementation(decoder: nn.Module, name: str) -> Iterator[None]:
    """Route `decoder` (a decoder layer list or text model: its attention and mask creation)
    through the attention implementation `name` within the block."""
    configs = {id(m.config): m.config for m in decoder.modules() if hasattr(m, "config")}
    saved = {k: c._attn_implementation_internal for k, c in configs.items()}
    try:
        for c in configs.values():
            c._attn_implementation_internal = name
        yield
    finally:
        for k, c in configs.items():
            c._attn_implementation_internal = saved[k]
