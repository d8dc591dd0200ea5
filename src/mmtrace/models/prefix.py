"""A prompt's unchanged prefix, computed once.

An intervention at position t (a vector added to a module's output there, as MultEdit's value
optimisation does at the visual constraint's last token, docs/method.md §7) cannot change the
positions before t where attention is causal there. A loop of such interventions therefore needs
the keys and values of positions < t once, and runs only positions t.. per step; for an MLLM the
image tokens lie in the prefix, so the vision tower runs once too.

The language model is run as the model itself runs it (`models.language`: the input embeddings,
position ids and attention mask its wrapper builds, recorded from one forward pass), so the
prefix and every suffix see exactly the full forward's inputs, whatever the family (Qwen's 3-D
M-RoPE positions, Gemma-3's per-layer masks). Where a position before t attends to t or later
(PaliGemma's bidirectional prefix), there is no such prefix: `cache_prefix` raises NoPrefix and
the caller runs full forwards. Every run gets a fresh cache holding the prefix's tensors, so the
same prefix serves every step and no step's autograd graph reaches the next (tests compare the
suffix run with a full forward, logits and gradients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from transformers import DynamicCache

from mmtrace.models import language, masks
from mmtrace.models.lookup import locate


class NoPrefix(ValueError):
    """Positions before the start depend on positions after it: no prefix can be cached."""


@dataclass
class Prefix:
    """Positions < `start` of a batch-1 prompt: their keys and values per layer (no gradient);
    `call` is the whole prompt's language-model call, whose positions from `start` on each run
    computes."""

    keys_values: list[tuple[torch.Tensor, torch.Tensor]]
    call: language.LanguageCall
    start: int

    def cache(self) -> DynamicCache:
        """A fresh cache holding the prefix (every position of every layer, sliding-window
        layers too): each run appends its own positions (and their autograd graph) to it."""
        cache = DynamicCache()
        for i, (k, v) in enumerate(self.keys_values):
            cache.update(k, v, i)
        return cache


def _image_positions(model, ids: torch.Tensor) -> torch.Tensor:
    token = getattr(model.config, "image_token_id", None)
    if token is None:
        token = getattr(model.config, "image_token_index", None)
    if token is None:
        return torch.zeros(0, dtype=torch.long)
    return (ids[0] == token).nonzero().flatten()


@torch.no_grad()
def cache_prefix(model, inputs: Mapping[str, torch.Tensor], start: int) -> Prefix:
    """Run positions < `start` of the batch-1 prompt `inputs` once and keep their cache."""
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ValueError(f"a cached prefix is for one prompt, got a batch of {ids.shape[0]}")
    if not 0 < start < ids.shape[1]:
        raise ValueError(f"prefix end {start} outside the prompt's 1..{ids.shape[1] - 1}")
    images = _image_positions(model, ids)
    if images.numel() and int(images.max()) >= start:
        raise ValueError(f"image token at position {int(images.max())}, not before {start}")
    blocks = locate(model)
    with language.recording(model) as calls, masks.recording(blocks) as found:
        model(**inputs)
    call = calls[-1]
    layer = masks.noncausal_layer(blocks, found, start, call.seq)
    if layer is not None:
        raise NoPrefix(
            f"layer {layer}'s attention lets positions before {start} see later ones, or is not "
            "causal after it"
        )
    out = call.head_part(start).run(model, cache=DynamicCache(), use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    return Prefix([(layer.keys, layer.values) for layer in cache.layers], call, start)


def run_suffix(model, prefix: Prefix, logits_to_keep: int = 0) -> SimpleNamespace:
    """The model's logits (`.logits`, [1, positions, vocab]) on the positions from
    `prefix.start` on (differentiable), attending to the cached prefix; `logits_to_keep` n > 0:
    the last n positions only."""
    out = prefix.call.tail_part(prefix.start).run(model, cache=prefix.cache(), use_cache=True)
    hidden = out.last_hidden_state
    if logits_to_keep:
        hidden = hidden[:, -logits_to_keep:]
    return SimpleNamespace(logits=language.head(model, hidden))
