"""The toy models' optimisation: the loss at answer tokens, AdamW with warm-up and cosine decay,
and the training loop with its progress bar and loss log."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from mmtrace.logs import progress

log = logging.getLogger(__name__)


def answer_loss(
    model,
    batch: dict,
    inputs_embeds: torch.Tensor | None = None,
    second_weight: float = 0.0,
    **extra,
) -> torch.Tensor:
    """Cross-entropy at the answer tokens. `inputs_embeds` replaces the input ids (an MLLM's
    embeddings with its image features already in place). A stacked batch (`split`: the first
    part's target count) weighs its two parts' means `1 - second_weight` and `second_weight`."""
    ids = None if inputs_embeds is not None else batch["input_ids"]
    out = model.model(
        input_ids=ids, inputs_embeds=inputs_embeds, attention_mask=batch["attention_mask"], **extra
    )
    hidden = out.last_hidden_state[batch["rows"], batch["pos"]]
    logits = model.get_output_embeddings()(hidden).float()
    if "split" not in batch:
        return nn.functional.cross_entropy(logits, batch["targets"])
    k, t = batch["split"], batch["targets"]
    first = nn.functional.cross_entropy(logits[:k], t[:k])
    second = nn.functional.cross_entropy(logits[k:], t[k:])
    return (1 - second_weight) * first + second_weight * second


def schedule(opt: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def run_steps(step_fn, params, steps: int, lr: float, warmup: int, desc: str) -> list[float]:
    """Optimise `params` (tensors, or AdamW parameter groups with their own `lr`)."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    params = [p for g in opt.param_groups for p in g["params"]]
    sched = schedule(opt, min(warmup, max(1, steps // 5)), steps)
    losses: list[float] = []
    bar = progress(range(steps), desc=desc, unit="step")
    running = None
    for step in bar:
        loss = step_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(running, 5))
            bar.set_postfix(loss=f"{running:.4f}")
        if step % 500 == 0 or step == steps - 1:
            log.info("%s step %d/%d loss %.4f", desc, step + 1, steps, running)
    return losses
