"""Eq. 1 of the paper (after Yuksekgonul et al. 2023), computed exactly from a model's own weights.

The contribution of source token i to target token j at layer l is
`a(l, i->j) = || sum_h A(l,h)[j,i] (x_i W_V(l,h) + b_V(l,h)) W_O(l,h) ||_2`, with x_i the input of
the attention block (the output of the layer norm feeding it) and A the attention probabilities,
grouped-query key/value heads expanded as `repeat_kv` does. Summed over i (plus the output bias),
the un-normed vectors give back the attention block's output at j exactly, which the tests check.

x is taken from the attention module's own input rather than from a named layer norm, so it is by
construction what `v_proj` sees (for Llama and Phi that is `input_layernorm`'s output). A needs the
eager attention path, the only one that materialises probabilities; it is switched on for the one
forward pass and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mmtrace.models.attention import attention_implementation
from mmtrace.models.hooks import layer_input, output_hooks
from mmtrace.models.lookup import attention_output_projection, locate, value_projection

# Bound on the elements of one [targets, seq, hidden] block, so long multimodal prompts (576 image
# tokens, hidden 4096) fit in memory: targets are processed in chunks of at most this size.
MAX_BLOCK = 1 << 27


@dataclass
class LayerCapture:
    """What one attention block saw and produced in a single-example forward pass."""

    x: torch.Tensor  # [seq, hidden]: the normalised input
    probs: torch.Tensor  # [heads, seq, seq]: attention probabilities, target x source
    output: torch.Tensor  # [seq, hidden]: the block's output (o_proj bias included)


def _normalise(indices: Sequence[int] | None, n: int, what: str) -> list[int]:
    if indices is None:
        return list(range(n))
    out = [i + n if i < 0 else i for i in indices]
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise IndexError(f"{what} {bad} out of range for {n}")
    return out


def capture(
    model: nn.Module, inputs: Mapping[str, torch.Tensor], layers: Sequence[int]
) -> dict[int, LayerCapture]:
    """One forward pass, hooking the attention blocks of `layers` (batch size 1 only)."""
    blocks = locate(model)
    layers = _normalise(layers, len(blocks), "layers")
    found: dict[int, LayerCapture] = {}

    def hook(layer: int):
        def fn(module, args, kwargs, output):
            x = layer_input(args, kwargs)
            if not isinstance(output, tuple) or len(output) < 2 or output[1] is None:
                raise RuntimeError(
                    f"{type(module).__name__} returned no attention probabilities under eager"
                )
            if x.shape[0] != 1:
                raise ValueError(f"batch size must be 1, got {x.shape[0]}")
            found[layer] = LayerCapture(x[0].detach(), output[1][0].detach(), output[0][0].detach())

        return fn

    hooks = [(blocks.module("attn", layer), hook(layer)) for layer in layers]
    with (
        output_hooks(hooks, with_kwargs=True),
        torch.no_grad(),
        attention_implementation(blocks.layers, "eager"),
    ):
        model(**inputs)
    missing = sorted(set(layers) - set(found))
    if missing:
        raise RuntimeError(f"attention of layers {missing} did not run")
    return found


def _per_head_outputs(attn: nn.Module, cap: LayerCapture) -> torch.Tensor:
    """[seq, heads, hidden]: each source token's value vector of each head, mapped through that
    head's slice of the output projection (the part of Eq. 1 that does not depend on j)."""
    v_proj, o_proj = value_projection(attn), attention_output_projection(attn)
    n_heads = cap.probs.shape[0]
    dtype = torch.promote_types(cap.x.dtype, torch.float32)  # half-precision models: sum in fp32
    x = cap.x.to(dtype)
    v = x @ v_proj.weight.to(dtype).T
    if v_proj.bias is not None:
        v = v + v_proj.bias.to(dtype)
    head_dim = o_proj.weight.shape[1] // n_heads
    n_kv = v.shape[1] // head_dim
    if n_kv * head_dim != v.shape[1] or n_heads % n_kv:
        raise ValueError(f"cannot split v_proj ({v.shape[1]}) into heads of {head_dim}")
    # repeat_kv: query head h reads key/value head h // (n_heads // n_kv).
    v = v.view(-1, n_kv, head_dim).repeat_interleave(n_heads // n_kv, dim=1)
    w_o = o_proj.weight.to(dtype).view(-1, n_heads, head_dim)  # [hidden, heads, head_dim]
    return torch.einsum("ihd,khd->ihk", v, w_o)


def _vectors(per_head: torch.Tensor, probs: torch.Tensor, targets: list[int]) -> torch.Tensor:
    a = probs[:, targets, :].to(per_head.dtype)  # [heads, targets, seq]
    return torch.einsum("hti,ihk->tik", a, per_head)


@torch.no_grad()
def contribution_vectors(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    layer: int,
    targets: Sequence[int] | None = None,
) -> torch.Tensor:
    """[targets, seq, hidden]: the un-normed terms of Eq. 1 at `layer`, one per (target, source).

    Their sum over sources plus the output projection's bias is the attention block's output.
    """
    cap = capture(model, inputs, [layer])
    (layer,) = cap
    seq = cap[layer].x.shape[0]
    attn = locate(model).module("attn", layer)
    return _vectors(
        _per_head_outputs(attn, cap[layer]), cap[layer].probs, _normalise(targets, seq, "targets")
    )


@torch.no_grad()
def attention_contributions(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    layers: Sequence[int] | None = None,
    targets: Sequence[int] | None = None,
) -> torch.Tensor:
    """[layers, targets, seq]: Eq. 1, a(l, i->j), from one forward pass (all layers/targets by
    default); entries with source after target are exactly 0 (causal attention)."""
    blocks = locate(model)
    layers = _normalise(layers, len(blocks), "layers")
    caps = capture(model, inputs, layers)
    out = []
    for layer in layers:
        cap = caps[layer]
        per_head = _per_head_outputs(blocks.module("attn", layer), cap)
        seq, _, hidden = per_head.shape
        tgt = _normalise(targets, seq, "targets")
        step = max(1, MAX_BLOCK // (seq * hidden))
        norms = [
            _vectors(per_head, cap.probs, tgt[s : s + step]).norm(dim=-1)
            for s in range(0, len(tgt), step)
        ]
        out.append(torch.cat(norms) if norms else per_head.new_zeros(0, seq))
    return torch.stack(out)
