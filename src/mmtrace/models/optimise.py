"""The toy models' optimisation: the loss at answer tokens, AdamW with warm-up and cosine decay,
and the training loop with its progress bar and loss log."""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from mmtrace.logs import progress

log = logging.getLogger(__name__)


def answer_loss(model, batch: dict[str, torch.Tensor], **extra) -> torch.Tensor:
    out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
    hidden = out.last_hidden_state[batch["rows"], batch["pos"]]
    logits = model.get_output_embeddings()(hidden)
    return nn.functional.cross_entropy(logits.float(), batch["targets"])


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
