"""Visual-token ablation (docs/method.md §6): the causal check of F3.

If a small subset of visual tokens carries the image's information into the constraint (Fig. 5),
knocking out the tokens with the largest contribution should hurt the answer more than knocking
out as many random tokens, and far more than the lowest-ranked ones. Two ways of knocking out:
- `block`: attention from every later token to the chosen visual tokens is cut in the early
  layers (`layers`), the attention knockout of Geva et al. 2023; the tokens' own residual
  stream is untouched, so later layers can still read them;
- `mean`: the chosen tokens' embeddings (the language model's input at the visual tokens: the
  projector's output in LLaVA) are replaced by their mean over a set of images at the same
  visual-token position, which removes this image's content there while keeping the
  embeddings in distribution.
Each variant of a question is one row of a batch: the rows share the prompt and image and differ
only in which tokens are knocked out. The language model runs as the model runs it
(`models.language`: the embeddings, position ids and masks the model's own forward builds), so
the same code serves every family (Qwen's M-RoPE, Gemma-3's image-block masks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from mmtrace.models.attention import attention_implementation
from mmtrace.models.encoding import EncodedQuestion, image_token_id
from mmtrace.models.hooks import input_hook, input_hooks, layer_input
from mmtrace.models.language import language_call, logits_at, recording, text_model
from mmtrace.models.loading import LoadedModel
from mmtrace.models.lookup import locate
from mmtrace.seeding import derive

WAYS = ("block", "mean")
RANKINGS = ("top", "random", "bottom")
# Ranked by the image's content instead of by Eq. 1: the share of each patch the object covers
# (the renderer's mask; in the planted world, the code strip). A baseline for Eq. 1's ranking,
# where a mask exists (the toy worlds).
MASK = "mask"


def ks_for(fractions: Sequence[float], n_visual: int) -> list[int]:
    """Distinct k = round(fraction * n_visual) (at least 1), ascending."""
    return sorted({max(1, min(n_visual, round(f * n_visual))) for f in fractions})


def rank(contrib: np.ndarray) -> np.ndarray:
    """Visual-token indices by descending contribution (ties to the lower index)."""
    return np.argsort(-np.asarray(contrib, dtype=np.float64), kind="stable")


def variants(
    contrib: np.ndarray,
    ks: Sequence[int],
    draws: int,
    seed: int,
    coverage: np.ndarray | None = None,
) -> list[tuple[int, str, list[int]]]:
    """(k, ranking, visual-token indices) for every k: the top k, `draws` random k-subsets drawn
    from `seed`, the bottom k, and with `coverage` (per visual token, the object's share of the
    patch) the k tokens the object covers most."""
    order = rank(contrib)
    n = order.size
    rng = np.random.default_rng(seed)
    by_content = None if coverage is None else rank(coverage)
    if by_content is not None and by_content.size != n:
        raise ValueError(f"{by_content.size} mask patches for {n} visual tokens")
    out = []
    for k in ks:
        out.append((k, "top", sorted(order[:k].tolist())))
        for _ in range(draws):
            out.append((k, "random", sorted(rng.choice(n, k, replace=False).tolist())))
        out.append((k, "bottom", sorted(order[n - k :].tolist())))
        if by_content is not None:
            out.append((k, MASK, sorted(by_content[:k].tolist())))
    return out


def mask_overlap(contrib: np.ndarray, coverage: np.ndarray, ks: Sequence[int]) -> list[float]:
    """Per k, the share of Eq. 1's top k that are also among the object's k best-covered
    patches: does the contribution ranking find the image's content?"""
    top, by_content = rank(contrib), rank(coverage)
    return [len(set(top[:k].tolist()) & set(by_content[:k].tolist())) / k for k in ks]


def _block_mask(
    rows: Sequence[Sequence[int]], seq: int, device, queries: Sequence[int] | None = None
) -> torch.Tensor:
    """[rows, 1, seq, seq] bool: True where query j > key i, i is knocked out in that row, and
    j is one of `queries` (every later token if None)."""
    out = torch.zeros(len(rows), 1, seq, seq, dtype=torch.bool, device=device)
    later = torch.ones(seq, seq, dtype=torch.bool, device=device).tril(-1)  # j > i
    if queries is not None:
        keep = torch.zeros(seq, dtype=torch.bool, device=device)
        keep[torch.as_tensor([q % seq for q in queries], device=device)] = True
        later &= keep[:, None]
    for b, positions in enumerate(rows):
        if positions:
            cols = torch.as_tensor(list(positions), device=device)
            out[b, 0][:, cols] = later[:, cols]
    return out


@contextmanager
def blocking(
    model: nn.Module,
    rows: Sequence[Sequence[int]],
    layers: Sequence[int],
    queries: Sequence[int] | None = None,
) -> Iterator[None]:
    """Within the block, batch row b's later tokens (only `queries`, absolute positions, if
    given; negative ones count from the end) cannot attend to `rows[b]` (absolute positions) in
    the attention of `layers`; every other layer and row is untouched. Attention runs on the
    eager path in every layer, which adds its masks: a boolean mask (made for SDPA, as a model
    recorded under SDPA passes it) becomes additive."""
    blocks = locate(model)
    cache: dict[tuple, torch.Tensor] = {}
    knocked = set(layers)

    def additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min
        )

    def pre(module, args, kwargs):
        hidden = layer_input(args, kwargs)
        b, seq = hidden.shape[:2]
        mask = kwargs.get("attention_mask")
        if module not in knocked_modules:
            if mask is None or mask.dtype != torch.bool:
                return None
            return args, {**kwargs, "attention_mask": additive(mask, hidden.dtype)}
        if b != len(rows):
            raise ValueError(f"batch has {b} rows but {len(rows)} knockout sets were given")
        key = (seq, hidden.device)
        if key not in cache:
            cache[key] = _block_mask(rows, seq, hidden.device, queries)
        block = cache[key]
        if mask is None:
            causal = torch.ones(seq, seq, dtype=torch.bool, device=hidden.device).triu(1)
            mask = torch.zeros(b, 1, seq, seq, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(causal, torch.finfo(hidden.dtype).min)
        if mask.dtype == torch.bool:  # True = may attend
            mask = additive(mask & ~block[..., -mask.shape[-2] :, -mask.shape[-1] :], hidden.dtype)
        else:  # additive
            mask = mask.masked_fill(
                block[..., -mask.shape[-2] :, -mask.shape[-1] :], torch.finfo(mask.dtype).min
            )
        return args, {**kwargs, "attention_mask": mask}

    attn = [blocks.module("attn", layer) for layer in range(len(blocks))]
    knocked_modules = {attn[layer] for layer in knocked}
    hooks = [(m, pre) for m in attn]
    with input_hooks(hooks, with_kwargs=True), attention_implementation(blocks.layers, "eager"):
        yield


def visual_positions(model: nn.Module, ids: torch.Tensor) -> list[list[int]]:
    """Per row of `ids`, the positions of its visual (image) tokens."""
    token = image_token_id(model)
    return [(row == token).nonzero().flatten().tolist() for row in ids]


@contextmanager
def mean_ablating(
    model: nn.Module, rows: Sequence[Sequence[int]], mean: torch.Tensor
) -> Iterator[None]:
    """Within the block, image b's visual tokens `rows[b]` (indices among the visual tokens) are
    replaced by `mean` [n_visual, hidden] in the language model's input embeddings."""
    seen: dict[str, list[list[int]]] = {}

    def ids(_module, args, kwargs):
        seen["at"] = visual_positions(model, kwargs.get("input_ids", args[0] if args else None))

    def hook(_module, args, kwargs):
        embeds = kwargs["inputs_embeds"]
        if embeds.shape[0] != len(rows):
            raise ValueError(f"{embeds.shape[0]} images but {len(rows)} knockout sets were given")
        embeds = embeds.clone()
        for b, idx in enumerate(rows):
            if idx:
                at = torch.as_tensor([seen["at"][b][i] for i in idx], device=embeds.device)
                i = torch.as_tensor(list(idx), device=embeds.device)
                embeds[b, at] = mean.to(embeds.device, embeds.dtype)[i]
        return args, {**kwargs, "inputs_embeds": embeds}

    with (
        input_hook(model, ids, with_kwargs=True),
        input_hook(text_model(model), hook, with_kwargs=True),
    ):
        yield


@torch.no_grad()
def mean_visual_embeddings(loaded: LoadedModel, prompt: str, images: list, batch_size: int):
    """[n_visual, hidden]: the language model's input embeddings at the visual tokens averaged
    over `images`, per visual-token position (every image must give as many)."""
    total, count = None, 0
    for s in range(0, len(images), batch_size):
        chunk = images[s : s + batch_size]
        enc = loaded.encode([prompt] * len(chunk), chunk)
        with recording(loaded.model) as calls:
            loaded.model(**enc)
        embeds = calls[-1].embeds.float()
        for b, at in enumerate(visual_positions(loaded.model, enc["input_ids"])):
            feats = embeds[b, at]
            if total is not None and feats.shape != total.shape:
                raise ValueError(
                    f"mean ablation: images give {feats.shape[0]} and {total.shape[0]} visual "
                    "tokens; it needs the same number per image"
                )
            total = feats if total is None else total + feats
            count += 1
    if not count:
        raise ValueError("mean ablation needs at least one image")
    return total / count


@torch.no_grad()
def ablate_question(
    loaded: LoadedModel,
    enc: EncodedQuestion,
    gold: Sequence[int],
    contrib: np.ndarray,
    ks: Sequence[int],
    ways: Sequence[str],
    block_layers: Sequence[int],
    mean: torch.Tensor | None,
    draws: int,
    seed: int,
    batch_size: int,
    per_layer: bool = False,
    coverage: np.ndarray | None = None,
) -> dict:
    """p(answer) and correctness of one question under every knockout (with `coverage`, also
    the knockouts ranked by the object's mask and `mask_overlap`).

    Returns {way: {ranking: {"p": [per k], "correct": [per k]}}} with random draws averaged,
    plus the clean `p_clean` and `correct_clean`; `gold` are the answer's first-token ids.
    `per_layer`: also `per_layer` = {"p", "correct"} per layer l with every visual token
    blocked from the visual constraint's tokens in layer l only (F3-layer: the constraint reads
    the image there), and `per_layer_all` the same blocked from every later token (where the
    image's information enters the text at all: a prompt whose last token reads the image
    itself shows there and not in `per_layer`)."""
    model = loaded.model
    gold_t = torch.as_tensor(list(gold), device=loaded.device)

    def score(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        probs = torch.softmax(logits[:, -1].float(), dim=-1)
        p = probs[:, gold_t].sum(-1)
        ok = torch.isin(probs.argmax(-1), gold_t)
        return p.cpu().numpy().astype(np.float64), ok.cpu().numpy()

    p0, ok0 = score(model(**enc.inputs).logits[:, -1:])
    plan = variants(contrib, ks, draws, seed, coverage)
    rankings = RANKINGS if coverage is None else (*RANKINGS, MASK)
    out: dict = {"p_clean": float(p0[0]), "correct_clean": bool(ok0[0]), "ks": list(ks)}
    if coverage is not None:
        out["mask_overlap"] = mask_overlap(contrib, coverage, ks)
    # the language model's call once: every variant row reuses its embeddings (no vision tower
    # per variant), positions and masks
    call = language_call(model, enc.inputs)
    embeds = call.embeds
    image = torch.as_tensor(enc.image_positions, device=embeds.device)
    for way in ways:
        ps, oks = [], []
        for s in range(0, len(plan), batch_size):
            part = plan[s : s + batch_size]
            rows = embeds.repeat(len(part), 1, 1)
            ctx = contextlib.nullcontext()
            if way == "block":
                knocked = [[enc.image_positions[i] for i in idx] for _, _, idx in part]
                ctx = blocking(model, knocked, block_layers)
            elif way == "mean":  # the projector's output replaced by its mean, per patch
                if mean is None:
                    raise ValueError("mean ablation needs the mean visual embeddings")
                for b, (_, _, idx) in enumerate(part):
                    if idx:
                        at = torch.as_tensor(idx, device=rows.device)
                        rows[b, image[at]] = mean.to(rows.device, rows.dtype)[at]
            else:
                raise ValueError(f"unknown ablation way {way!r}; expected one of {WAYS}")
            with ctx:
                p, ok = score(logits_at(model, call.rows(len(part)), embeds=rows)[:, None])
            ps.append(p)
            oks.append(ok)
        p_all, ok_all = np.concatenate(ps), np.concatenate(oks)
        result = {}
        for ranking in rankings:
            result[ranking] = {"p": [], "correct": []}
            for k in ks:
                sel = [i for i, (kk, r, _) in enumerate(plan) if kk == k and r == ranking]
                result[ranking]["p"].append(float(p_all[sel].mean()))
                result[ranking]["correct"].append(float(ok_all[sel].mean()))
        out[way] = result
    if per_layer:
        constraint = list(enc.span_positions.get("visual") or [])
        if not constraint:
            raise ValueError(f"{enc.qid}: per-layer blocking needs the visual constraint's tokens")
        for key, queries in (("per_layer", constraint), ("per_layer_all", None)):
            curve_p, curve_ok = [], []
            for layer in range(len(locate(model))):
                with blocking(model, [list(enc.image_positions)], [layer], queries=queries):
                    p, ok = score(logits_at(model, call)[:, None])
                curve_p.append(float(p[0]))
                curve_ok.append(bool(ok[0]))
            out[key] = {"p": curve_p, "correct": curve_ok}
    return out


def question_seed(seed: int, qid: str) -> int:
    return derive(seed, "ablation", qid)
