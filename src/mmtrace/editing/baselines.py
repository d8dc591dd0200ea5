"""The baselines MultEdit is compared with (docs/method.md §7): fine-tuning the same weight W on
the edit prompt, unconstrained (FT) and with an L-infinity bound on the change (FT-L of Zhu et al.
2020, ROME's constrained fine-tuning baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from mmtrace.config import Editing
from mmtrace.editing.multedit import Edit, target_logprob, trainable_only
from mmtrace.models.language import language_call, logits_at
from mmtrace.models.lookup import locate, output_projection

_DEFAULTS = Editing()


@dataclass(frozen=True)
class FinetuneSettings:
    """One baseline's settings; the defaults are `config.Editing`'s."""

    layer: int = _DEFAULTS.layer
    steps: int = _DEFAULTS.finetune_steps
    lr: float = _DEFAULTS.finetune_lr
    norm: float | None = None  # L-inf bound on the change of each weight (None: unconstrained)


def finetune(
    model: nn.Module, inputs: Mapping[str, torch.Tensor], target_id: int, s: FinetuneSettings
) -> Edit:
    """Adam on W (the MLP output projection of `s.layer`) to maximise p(target | prompt). W
    lies after the vision tower and projector, so an MLLM's language-model call (its input
    embeddings, image features in place, and positions) is recorded once and each step runs
    the language model only."""
    call = language_call(model, inputs) if inputs.get("pixel_values") is not None else None

    def logprob():
        if call is None:
            return target_logprob(model, inputs, target_id)
        return torch.log_softmax(logits_at(model, call)[0].float(), dim=-1)[target_id]

    w = output_projection(locate(model), s.layer).weight
    original = w.detach().clone()
    opt = torch.optim.Adam([w], lr=s.lr)
    history = []
    with trainable_only(model, [w]), torch.enable_grad():
        for _ in range(s.steps):
            opt.zero_grad()
            logp = logprob()
            history.append(float(logp.detach().exp()))
            (-logp).backward()
            opt.step()
            if s.norm is not None:
                with torch.no_grad():
                    w.copy_(original + (w - original).clamp(-s.norm, s.norm))
    with torch.no_grad():
        history.append(float(logprob().exp()))
    w.grad = None
    change = (w.detach() - original).abs().max()
    return Edit(
        w,
        original,
        {"layer": s.layer, "p_target_by_step": history, "max_abs_change": float(change)},
    )
