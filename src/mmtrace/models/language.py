"""The language model inside any Hugging Face MLLM, called as the model itself calls it.

Every multimodal wrapper (LLaVA, LLaVA-NeXT, Qwen2-VL, Idefics3, Gemma-3, PaliGemma, ...) builds
the language model's input embeddings (text embeddings with the image's features scattered over
its image tokens), its position ids (1-D, or 3-D for Qwen's M-RoPE, or starting at 1 for
PaliGemma) and its attention mask (2-D padding, or per-layer-type 4-D masks with bidirectional
image blocks), then calls its text model. Instead of re-implementing any of that per family,
`language_call` records that call with a pre-hook on the text model (the module that runs the
decoder layers) during one ordinary forward pass; `LanguageCall.run` calls the text model again
with the recorded inputs (possibly sliced to positions, or with edited embeddings), and `head`
maps its output to logits as the model does. So every method that reruns the language model
(MultEdit's cached prefix, editing's probes, the visual-token ablation, the tracing engine's
positions) sees exactly the inputs the model's own forward gives it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from mmtrace.models.hooks import input_hook, output_hook
from mmtrace.models.lookup import locate, parent_of

# Call arguments that are about caching or output format, not about the inputs.
_NOT_INPUTS = {
    "input_ids",
    "inputs_embeds",
    "position_ids",
    "attention_mask",
    "cache",
    "past_key_values",
    "use_cache",
    "return_dict",
    "output_attentions",
    "output_hidden_states",
    "cache_position",
    "logits_to_keep",
}


def text_model(model: nn.Module) -> nn.Module:
    """The module whose forward runs the decoder layers (LlamaModel, Qwen2VLTextModel, ...)."""
    return parent_of(model, locate(model).layers)[0]


def cache_keyword(module: nn.Module) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name is deprecated)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


Mask = torch.Tensor | dict[str, Any] | None


def _map_mask(mask: Mask, fn) -> Mask:
    if mask is None:
        return None
    if isinstance(mask, dict):
        return {k: _map_mask(v, fn) for k, v in mask.items()}
    return fn(mask)


@dataclass
class LanguageCall:
    """What a model's text model was called with: input embeddings [b, seq, d], position ids
    ([b, seq], or [k, b, seq] for multi-axis rotary; the text model's default, 0..seq-1,
    where the model passed none), the attention mask as passed (None, a 2-D padding mask, a
    4-D mask, or a dict of them per layer type) and any further inputs."""

    embeds: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: Mask
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return self.embeds.shape[1]

    def positions(self, start: int, stop: int | None = None) -> torch.Tensor:
        """Position ids of positions start..stop-1 (the sequence axis is the last)."""
        return self.position_ids[..., start:stop]

    def rows(self, n: int) -> LanguageCall:
        """The call repeated for a batch of n rows (from a batch-1 call)."""
        if self.embeds.shape[0] != 1:
            raise ValueError("only a batch-1 call can be repeated")

        def batch(x: torch.Tensor, axis: int) -> torch.Tensor:
            shape = list(x.shape)
            shape[axis] = n
            return x.expand(*shape)

        return replace(
            self,
            embeds=batch(self.embeds, 0),
            position_ids=batch(self.position_ids, -2),
            attention_mask=_map_mask(self.attention_mask, lambda m: batch(m, 0)),
        )

    def head_part(self, start: int) -> LanguageCall:
        """Positions 0..start-1 alone."""
        return replace(
            self,
            embeds=self.embeds[:, :start],
            position_ids=self.positions(0, start),
            attention_mask=_map_mask(
                self.attention_mask,
                lambda m: m[..., :start] if m.ndim == 2 else m[..., :start, :start],
            ),
        )

    def tail_part(self, start: int) -> LanguageCall:
        """Positions start.. attending to a cache of positions 0..start-1: a 2-D padding mask
        covers every key, a 4-D mask keeps the rows of these queries."""
        return replace(
            self,
            embeds=self.embeds[:, start:],
            position_ids=self.positions(start),
            attention_mask=_map_mask(
                self.attention_mask, lambda m: m if m.ndim == 2 else m[..., start:, :]
            ),
        )

    def run(self, model: nn.Module, embeds: torch.Tensor | None = None, **kwargs):
        """The text model's output (last_hidden_state, cache) on this call's inputs, or on
        `embeds` in their place; `kwargs` go to the text model (cache, use_cache)."""
        text = text_model(model)
        if "cache" in kwargs:
            kwargs[cache_keyword(text)] = kwargs.pop("cache")
        return text(
            inputs_embeds=self.embeds if embeds is None else embeds,
            position_ids=self.position_ids,
            attention_mask=self.attention_mask,
            **{"use_cache": False, **self.extra, **kwargs},
        )


def logits_at(
    model: nn.Module, call: LanguageCall, index: torch.Tensor | None = None, **kwargs
) -> torch.Tensor:
    """[rows, vocab]: the model's logits at each row's position `index` (the last by default)
    when its text model runs `call` (`kwargs` go to `LanguageCall.run`, e.g. embeds)."""
    hidden = call.run(model, **kwargs).last_hidden_state
    if index is None:
        return head(model, hidden[:, -1])
    return head(model, hidden[torch.arange(hidden.shape[0], device=hidden.device), index])


def head(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from the text model's final hidden states, as the model computes them: its
    output embeddings, then its final soft-capping where its text config sets one (Gemma 2,
    PaliGemma 2). A model whose head does something else is caught by comparing `head` of its
    `final_hidden` with its own logits (the tracing engine does, once per question)."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


def head_mismatch(model: nn.Module, hidden: torch.Tensor, logits: torch.Tensor) -> str | None:
    """Why `head` of the text model's final hidden state (at one position) is not the model's
    own `logits` there, if it is not."""
    with torch.no_grad():
        mine = head(model, hidden).float()
    tol = 1e-4 if hidden.dtype == torch.float32 else 2e-2
    if torch.allclose(mine, logits.float(), atol=tol, rtol=tol):
        return None
    return (
        "the model's logits are not its output embeddings (with its text config's soft-capping) "
        "of its text model's output"
    )


def full_cache(model: nn.Module) -> dict[str, Any]:
    """A cache argument for `model`'s forward that keeps every position of every layer (a
    config-less DynamicCache: sliding-window layers too), where the forward takes one."""
    from transformers import DynamicCache

    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return {name: DynamicCache()}
    return {}


@contextmanager
def recording(model: nn.Module) -> Iterator[list[LanguageCall]]:
    """Record every call of the model's text model inside the block."""
    text = text_model(model)
    calls: list[LanguageCall] = []

    def hook(_m, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            embeds = model.get_input_embeddings()(ids)
        embeds = embeds.detach()
        pos = kwargs.get("position_ids")
        if pos is None:
            seq = embeds.shape[1]
            pos = torch.arange(seq, device=embeds.device).unsqueeze(0).expand(embeds.shape[0], -1)
        extra = {k: v for k, v in kwargs.items() if k not in _NOT_INPUTS and v is not None}
        calls.append(LanguageCall(embeds, pos.detach(), kwargs.get("attention_mask"), extra))

    with input_hook(text, hook, with_kwargs=True):
        yield calls


@torch.no_grad()
def language_call(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> LanguageCall:
    """One forward pass of `model` on `inputs`, recording its text model's call."""
    with recording(model) as calls:
        model(**inputs)
    if len(calls) != 1:
        raise RuntimeError(f"{type(model).__name__} called its text model {len(calls)} times")
    return calls[0]


@contextmanager
def final_hidden(model: nn.Module) -> Iterator[dict]:
    """Inside the block, `found["hidden"]` is the text model's final hidden states (after its
    final norm) of the last forward pass."""
    text = text_model(model)
    found: dict = {}

    def hook(_m, _args, out):
        found["hidden"] = out[0] if isinstance(out, tuple) else out.last_hidden_state

    with output_hook(text, hook):
        yield found


class _Skip(nn.Module):
    """A decoder layer that passes its input through."""

    def forward(self, hidden_states: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
        return hidden_states


@contextmanager
def only_layers(layers: nn.ModuleList, start: int, stop: int) -> Iterator[None]:
    """Inside the block, the decoder layers outside start..stop-1 pass their input through.
    Every layer keeps its index, so whatever the text model reads per index (Gemma-3's
    `layer_types[i]`: its mask and rotary base) stays the layer's own."""
    saved = list(layers)
    skip = _Skip()
    try:
        for i in range(len(saved)):
            if not start <= i < stop:
                layers[i] = skip
        yield
    finally:
        for i, m in enumerate(saved):
            layers[i] = m
