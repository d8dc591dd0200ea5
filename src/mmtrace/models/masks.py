"""The attention each decoder layer applies, read from the model itself.

The tracing engine recomputes a restored cell's positions t.. only, attending to the corrupted
run's keys before t with a causal mask of its own (and the layer's sliding window, if any). That
is exact only where the model's own attention is causal at those positions: PaliGemma's prefix
(image and prompt) attends bidirectionally, Gemma-3's image tokens attend to each other, and a
custom mask may do anything. `recording` keeps the mask every attention module is called with
during a forward pass, and `noncausal_layer` finds the first layer whose mask differs from the
causal (sliding-window) pattern at any query from a given position on; where it is None the
engine's own mask is the model's there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from mmtrace.models.hooks import input_hooks
from mmtrace.models.lookup import DecoderBlocks


def sliding_window(attn: nn.Module) -> int | None:
    """The attention module's sliding window (keys at distance < window), or None."""
    window = getattr(attn, "sliding_window", None)
    return int(window) if window else None


def soft_cap(attn: nn.Module) -> float | None:
    """The attention module's logit soft-capping (Gemma 2), or None."""
    cap = getattr(attn, "attn_logit_softcapping", None)
    if cap is None:
        cap = getattr(getattr(attn, "config", None), "attn_logit_softcapping", None)
    return cap


@contextmanager
def recording(blocks: DecoderBlocks) -> Iterator[dict[int, torch.Tensor | None]]:
    """Inside the block, `found[layer]` is the attention mask (None, bool or additive 4-D) the
    layer's attention module was last called with."""
    found: dict[int, torch.Tensor | None] = {}

    def recorder(layer: int):
        def hook(_m, _args, kwargs):
            mask = kwargs.get("attention_mask")
            found[layer] = mask.detach() if isinstance(mask, torch.Tensor) else None

        return hook

    with input_hooks(
        ((blocks.module("attn", i), recorder(i)) for i in range(len(blocks))), with_kwargs=True
    ):
        yield found


def allowed(mask: torch.Tensor) -> torch.Tensor:
    """[q, k] bool of a batch-1 mask: True where the query may attend to the key."""
    m = mask[0, 0] if mask.ndim == 4 else mask
    if m.dtype == torch.bool:
        return m
    return m > torch.finfo(m.dtype).min / 2


def causal_pattern(seq: int, window: int | None, device) -> torch.Tensor:
    """[seq, seq] bool: key k is visible from query q iff k <= q (and q - k < window)."""
    q = torch.arange(seq, device=device)[:, None]
    k = torch.arange(seq, device=device)[None, :]
    ok = k <= q
    if window is not None:
        ok &= (q - k) < window
    return ok


def noncausal_layer(
    blocks: DecoderBlocks, masks: dict[int, torch.Tensor | None], start: int, seq: int
) -> int | None:
    """The first layer whose attention differs from the causal (sliding-window) pattern at a
    query from position `start` on, or lets a query before `start` see a key from `start` on;
    None if there is none: then nothing before `start` depends on what is at or after it, and
    the positions from `start` on attend causally. A missing mask means the module's own
    `is_causal` (True unless it says otherwise), with no window unless the module has one."""
    for layer in range(len(blocks)):
        attn = blocks.module("attn", layer)
        window = sliding_window(attn)
        mask = masks.get(layer)
        if mask is None:
            if not getattr(attn, "is_causal", True):
                return layer
            if window is not None and window < seq:
                return layer  # a window with no mask to show it: cannot tell
            continue
        got = allowed(mask)
        if got.shape[-2:] != (seq, seq):
            return layer
        want = causal_pattern(seq, window, got.device)
        if not torch.equal(got[start:], want[start:]) or got[:start, start:].any():
            return layer
    return None


def obstacle(
    blocks: DecoderBlocks,
    masks: dict[int, torch.Tensor | None],
    keys: list[torch.Tensor],
    first: int,
    seq: int,
) -> str | None:
    """Why restorations from position `first` on cannot be recomputed exactly from their
    position on, with a causal (sliding-window) mask over a forward pass's recorded keys
    (`keys`, per layer) and its `masks`, if they cannot: the reason, in a few words."""
    layer = noncausal_layer(blocks, masks, first, seq)
    if layer is not None:
        return (
            f"attention is not causal at the traced positions (layer {layer}'s mask: a "
            "bidirectional prefix or image block reaches them)"
        )
    for i, k in enumerate(keys):
        if k.shape[-2] != seq:
            return f"layer {i}'s cache keeps {k.shape[-2]} of {seq} positions"
        if soft_cap(blocks.module("attn", i)) is not None:
            return "attention logit soft-capping"
    return None
