"""What the steps share, as `rules/common.smk` is what the rules share: the model jobs' prologue
and the shard selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from mmtrace import config

T = TypeVar("T")


def model_job(model: str, checkpoint: Path, spec: dict, threads: int):
    """Every model job's start: its torch threads, then the model as its `models:` entry says
    (role, dtype, device, adapter, remote code). `checkpoint` is the file that marks the model
    as ready: a toy model's `training_log.json`, or a hub model's `snapshot.json`, which names
    the pinned snapshot read offline."""
    import torch

    from mmtrace.models.loading import load

    torch.set_num_threads(threads)
    entry = config.ModelSpec(**spec)
    path = checkpoint.parent
    if entry.source == "hub":
        from mmtrace.models.hub import read_marker

        path = read_marker(checkpoint)
    return load(
        path,
        entry.role,
        name=model,
        dtype=entry.dtype,
        device=entry.device,
        trust_remote_code=entry.trust_remote_code,
        adapter=entry.adapter,
    )


def templates_for(loaded, prompts: dict) -> config.Prompts:
    """The config's prompt templates for `loaded`, chat-template prompts rendered with the
    model's own chat template (`mmtrace.models.encoding.render_prompts`)."""
    from mmtrace.models.encoding import render_prompts

    return render_prompts(loaded, config.Prompts(**prompts))


def sample_evenly(items: list[T], limit: int | None) -> list[T]:
    """`limit` items spread evenly over the list, in order (all if None or not fewer). A split's
    CSV is ordered by entity and then by constraint type, so its first n questions would cover
    the first entities and no multi-constraint question; an even spread keeps every part of
    it in proportion, with no seed to carry."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def shard_of(items: list[T], shard: int, shards: int, limit: int | None = None) -> list[T]:
    """`limit` items spread evenly over `items` (all if None), then every `shards`-th from `shard`
    on: shards of one split are disjoint and together cover the sample, whatever the number of
    jobs."""
    head = sample_evenly(items, limit)
    return [item for i, item in enumerate(head) if i % shards == shard]


def read_scores(path: Path) -> dict[str, dict]:
    """The evaluation's per-question rows (`evaluate_model`'s JSON lines), by question id."""
    with open(path, encoding="utf-8") as fh:
        return {row["qid"]: row for row in map(json.loads, fh)}
