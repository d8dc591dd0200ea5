"""Which route a trained model uses to bring the image into its answer (docs/method.md §5-§6).

Two diagnostics per question, both cheap:
- attention knockouts in every layer: the last token may not attend to the visual tokens, or
  the visual constraint's tokens may not; if the answer survives the first and dies with the
  second, the image reaches the answer through the constraint (the route the paper describes);
  if the reverse, the last token reads the image directly;
- linear probes of the entity's identity (its three attributes, which identify it uniquely) from
  the hidden state at the constraint's last token and at the last token, per layer: where the
  model's representation names the entity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmtrace.models.encoding import EncodedQuestion
from mmtrace.models.hooks import capture
from mmtrace.models.loading import LoadedModel
from mmtrace.models.lookup import locate
from mmtrace.transfer.ablation import blocking


@torch.no_grad()
def knockouts(loaded: LoadedModel, enc: EncodedQuestion, gold: Sequence[int]) -> dict:
    """p(answer) and correctness: clean, with the last token blocked from every visual token in
    every layer, and with the visual constraint's tokens blocked likewise."""
    model = loaded.model
    gold_t = torch.as_tensor(list(gold), device=loaded.device)
    layers = range(len(locate(model)))
    image = [enc.image_positions]
    out = {}
    variants = {
        "clean": None,
        "last_token_blocked": [len(enc.input_ids) - 1],
        "constraint_blocked": enc.span_positions["visual"],
    }
    for name, queries in variants.items():
        if queries is None:
            logits = model(**enc.inputs).logits
        else:
            with blocking(model, image, layers, queries=queries):
                logits = model(**enc.inputs).logits
        probs = torch.softmax(logits[0, -1].float(), dim=-1)
        out[name] = {
            "p": float(probs[gold_t].sum()),
            "correct": bool(torch.isin(probs.argmax(), gold_t)),
        }
    return out


@torch.no_grad()
def hidden_at(loaded: LoadedModel, enc: EncodedQuestion) -> dict[str, np.ndarray]:
    """[layers, hidden] residual stream after each layer at the constraint's last token and at
    the last token."""
    blocks = locate(loaded.model)
    with capture(blocks, "hidden", range(len(blocks))) as cache:
        loaded.model(**enc.inputs)
    positions = {
        "constraint_last": enc.span_positions["visual"][-1],
        "last_token": len(enc.input_ids) - 1,
    }
    return {
        role: np.stack([cache[i][0, p].float().cpu().numpy() for i in range(len(blocks))])
        for role, p in positions.items()
    }


def probe_hits(
    features: np.ndarray, labels: Sequence, folds: int, ridge: float, seed: int
) -> np.ndarray:
    """Per sample, whether a cross-validated ridge-regression classifier (one-vs-rest least
    squares on standardised features; folds drawn from `seed`) predicts its label."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    classes = np.unique(y)
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)
    order = np.random.default_rng(seed).permutation(len(y))
    hits = np.zeros(len(y), dtype=bool)
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-8
        xt, xs = (x[train] - mu) / sd, (x[test] - mu) / sd
        xt1 = np.hstack([xt, np.ones((len(xt), 1))])
        xs1 = np.hstack([xs, np.ones((len(xs), 1))])
        w = np.linalg.solve(xt1.T @ xt1 + ridge * np.eye(xt1.shape[1]), xt1.T @ onehot[train])
        hits[test] = classes[(xs1 @ w).argmax(1)] == y[test]
    return hits


ATTRIBUTES = ("shape", "color", "background")


def summarise(
    rows: list[dict],
    features: dict[str, list[np.ndarray]],
    labels: dict[str, list],
    folds: int,
    ridge: float,
    seed: int,
) -> dict:
    """Knockout accuracies and mean p(answer), and per layer the probes' accuracies: each
    attribute's, and the entity's identity (all three right)."""
    out: dict = {"n": len(rows), "knockout": {}, "probe": {}}
    for variant in ("clean", "last_token_blocked", "constraint_blocked"):
        out["knockout"][variant] = {
            "accuracy": float(np.mean([r[variant]["correct"] for r in rows])) if rows else None,
            "mean_p_answer": float(np.mean([r[variant]["p"] for r in rows])) if rows else None,
        }
    if len(rows) < 2 * folds:
        out["probe"] = {"skipped": f"{len(rows)} questions, fewer than {2 * folds}"}
        return out
    for role, per_question in features.items():
        stack = np.stack(per_question)  # [questions, layers, hidden]
        by_layer: dict[str, list[float]] = {a: [] for a in (*ATTRIBUTES, "identity")}
        for layer in range(stack.shape[1]):
            hits = [probe_hits(stack[:, layer], labels[a], folds, ridge, seed) for a in ATTRIBUTES]
            for a, h in zip(ATTRIBUTES, hits, strict=True):
                by_layer[a].append(float(h.mean()))
            by_layer["identity"].append(float(np.logical_and.reduce(hits).mean()))
        out["probe"][role] = by_layer
    return out
