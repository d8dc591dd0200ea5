"""A prompt's unchanged prefix, computed once.

An intervention at position t (a vector added to a module's output there, as MultEdit's value
optimisation does at the visual constraint's last token, docs/method.md §7) cannot change the
positions before t: attention is causal. A loop of such interventions therefore needs the keys
and values of positions < t once, in transformers' `DynamicCache`, and runs only positions t..
per step; for an MLLM the image tokens lie in the prefix, so the vision tower runs once too.
Every run gets a fresh cache holding the prefix's tensors, so the same prefix serves every step
and no step's autograd graph reaches the next (tests compare the suffix run with a full forward,
logits and gradients).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass
class Prefix:
    """Positions < `start` of a batch-1 prompt: their keys and values per layer (no gradient);
    `suffix` holds the inputs of the rest."""

    keys_values: list[tuple[torch.Tensor, torch.Tensor]]
    suffix: dict[str, torch.Tensor]
    start: int
    config: object

    def cache(self) -> DynamicCache:
        """A fresh cache holding the prefix: each run appends its own positions (and their
        autograd graph) to a cache of its own."""
        cache = DynamicCache(config=self.config)
        for i, (k, v) in enumerate(self.keys_values):
            cache.update(k, v, i)
        return cache


def _cache_keyword(model) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name is deprecated)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


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
    mask = inputs.get("attention_mask", torch.ones_like(ids))
    head = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    out = model(
        input_ids=ids[:, :start],
        attention_mask=mask[:, :start],
        use_cache=True,
        **head,
    )
    cache = getattr(out, "cache", None)
    if cache is None:  # transformers versions before the rename
        cache = out.past_key_values
    return Prefix(
        [(layer.keys, layer.values) for layer in cache.layers],
        {"input_ids": ids[:, start:], "attention_mask": mask},
        start,
        model.config.get_text_config(decoder=True),
    )


def run_suffix(model, prefix: Prefix, **kwargs):
    """The model's output on the positions from `prefix.start` on (differentiable), attending
    to the cached prefix."""
    kwargs[_cache_keyword(model)] = prefix.cache()
    return model(**prefix.suffix, use_cache=True, **kwargs)
