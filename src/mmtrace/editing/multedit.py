"""MultEdit (docs/method.md §7): rewrite the output projection W of an early causal MLP so that one
question's visual constraint maps to a new answer.

1. key k: the input of W at the visual constraint's last token on the clean prompt; v0: the
   MLP's output there;
2. value: z* = v0 + delta, delta optimised with Adam to maximise p(target's first token) when the
   MLP's output at that position is v0 + delta, with the penalty
   `weight_decay * ||delta|| / ||v0||^2` (ROME's v_weight_decay) and ||delta|| clamped to
   `clamp * ||v0||` after every step;
3. W* = W + (z* - b - W k) k^T / (lambda + k^T k) (`rank_one.rank_one_update`; b is W's bias,
   if any, since the MLP's output is W k + b).
Every edit returns an `Edit` whose `undo()` restores the original weight bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from mmtrace.config import MultEditSettings
from mmtrace.editing.rank_one import rank_one_update
from mmtrace.models.hooks import (
    first_output,
    input_hook,
    output_hook,
    replace_first_output,
)
from mmtrace.models.lookup import locate, output_projection
from mmtrace.models.prefix import NoPrefix, Prefix, cache_prefix, run_suffix
from mmtrace.models.scoring import last_logits

__all__ = ["Edit", "MultEditSettings", "multedit"]


@dataclass
class Edit:
    """An applied edit: the edited weight and a copy of its original value."""

    weight: nn.Parameter
    original: torch.Tensor
    info: dict = field(default_factory=dict)

    @torch.no_grad()
    def undo(self) -> None:
        self.weight.copy_(self.original)

    def undone(self) -> bool:
        return torch.equal(self.weight, self.original)


@contextmanager
def trainable_only(model: nn.Module, params: list[nn.Parameter]) -> Iterator[None]:
    """Gradients for `params` only, so backward passes allocate nothing for the other weights."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def target_logprob(model: nn.Module, inputs: Mapping[str, torch.Tensor], target_id: int):
    """log p(target | prompt) at the last position of a batch-1 prompt (differentiable; the LM
    head runs on that position only)."""
    return torch.log_softmax(last_logits(model, inputs).float(), dim=-1)[target_id]


def suffix_logprob(model: nn.Module, prefix: Prefix, target_id: int):
    """`target_logprob` from the cached prefix: only the positions from the key's on run."""
    logits = run_suffix(model, prefix, logits_to_keep=1).logits[0, -1].float()
    return torch.log_softmax(logits, dim=-1)[target_id]


@torch.no_grad()
def key_and_value(
    model: nn.Module, inputs: Mapping[str, torch.Tensor], layer: int, position: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, v0): the input of W and the MLP's output at `position` on the clean prompt."""
    blocks = locate(model)
    found: dict[str, torch.Tensor] = {}

    def pre(_m, args):
        found["k"] = args[0][0, position].detach().clone()

    def post(_m, _i, out):
        found["v"] = first_output(out)[0, position].detach().clone()

    with (
        input_hook(output_projection(blocks, layer), pre),
        output_hook(blocks.module("mlp", layer), post),
    ):
        model(**inputs)
    return found["k"], found["v"]


@contextmanager
def adding(model: nn.Module, layer: int, position: int, delta: torch.Tensor) -> Iterator[None]:
    """Add `delta` to the MLP's output at (`layer`, `position`) in every batch row."""

    def hook(_m, _i, out):
        h = first_output(out)
        shift = torch.zeros_like(h)
        shift[:, position] = delta.to(h.dtype)
        return replace_first_output(out, h + shift)

    with output_hook(locate(model).module("mlp", layer), hook):
        yield


def optimise_delta(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    position: int,
    target_id: int,
    v0: torch.Tensor,
    settings: MultEditSettings,
) -> tuple[torch.Tensor, list[float]]:
    """delta maximising p(target) with the MLP output at `position` set to v0 + delta; returns
    it and p(target) before each step and after the last. Where delta cannot change the
    positions before `position` (causal attention there), they run once
    (`mmtrace.models.prefix`) and each step runs the rest; elsewhere (PaliGemma's bidirectional
    prefix) each step runs the whole prompt."""
    try:
        prefix: Prefix | None = cache_prefix(model, inputs, position)
    except NoPrefix:
        prefix = None
    at = 0 if prefix is not None else position

    def logprob():
        if prefix is None:
            return target_logprob(model, inputs, target_id)
        return suffix_logprob(model, prefix, target_id)

    delta = torch.zeros_like(v0, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=settings.lr)
    # the release's penalty divides by ||v0||^2: an MLP that writes nothing at the key's
    # position (v0 = 0) would make it infinite, so the norm is floored; the clamp then keeps
    # delta at (almost) zero, which is what a clamp relative to ||v0|| means there
    v_norm = v0.float().norm().clamp_min(1e-6)
    bound = settings.clamp * v_norm
    history = []
    with trainable_only(model, []), torch.enable_grad():
        for _ in range(settings.steps):
            opt.zero_grad()
            with adding(model, settings.layer, at, delta):
                logp = logprob()
            history.append(float(logp.detach().exp()))
            loss = -logp + settings.weight_decay * delta.norm() / v_norm**2
            loss.backward()
            opt.step()
            with torch.no_grad():
                norm = delta.norm()
                if norm > bound:
                    delta.mul_(bound / norm)
    with torch.no_grad(), adding(model, settings.layer, at, delta):
        history.append(float(logprob().exp()))
    return delta.detach(), history


@torch.no_grad()
def apply_update(model: nn.Module, layer: int, key: torch.Tensor, z_w: torch.Tensor, lam: float):
    """Write W* (the closed form with target `z_w` for W k) into the model; return the Edit."""
    w = output_projection(locate(model), layer).weight
    original = w.detach().clone()
    w.copy_(rank_one_update(w.detach(), key.to(w.dtype), z_w.to(w.dtype), lam))
    return Edit(w, original)


def multedit(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    position: int,
    target_id: int,
    settings: MultEditSettings,
) -> Edit:
    """Edit `model` in place so that the prompt `inputs` answers `target_id`; `position` is the
    visual constraint's last token (the key's position)."""
    n_layers = len(locate(model))
    if not 0 <= settings.layer < n_layers:
        raise ValueError(f"editing layer {settings.layer} not in [0, {n_layers})")
    k, v0 = key_and_value(model, inputs, settings.layer, position)
    delta, history = optimise_delta(model, inputs, position, target_id, v0, settings)
    w = output_projection(locate(model), settings.layer).weight
    z_w = w.detach().float() @ k.float() + delta  # W k + delta: the bias is not part of W k
    edit = apply_update(model, settings.layer, k.float(), z_w, settings.lam)
    edit.info = {
        "layer": settings.layer,
        "position": position,
        "delta_norm": float(delta.norm()),
        "v0_norm": float(v0.float().norm()),
        "key_norm": float(k.float().norm()),
        "clamp": settings.clamp,
        "p_target_by_step": history,
    }
    return edit
