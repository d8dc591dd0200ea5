"""Tracing a split's questions for one model, and the summary over all traces (docs/method.md §4).

Which questions are traced, per model:
- an MLLM: single-constraint questions corrupted at the visual constraint, with every window in
  `tracing.windows`; multi-constraint questions corrupted at the textual constraint with
  `tracing.multi_window` (Figs. 4/12);
- an LLM: the textual counterparts of single-constraint questions, corrupted at the entity's
  name, with `tracing.llm_window` (Fig. 1's right half).
A question is traced only if the model answers it correctly (from the evaluation's scores; off with
`tracing.only_correct: false`) and
the corruption lowers p(answer) by at least `tracing.min_drop`; every exclusion is counted with
its reason.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmtrace import config
from mmtrace.dataset import QuestionRecord
from mmtrace.logs import progress
from mmtrace.models.encoding import AlignmentError, encode_record, question_text
from mmtrace.models.loading import LoadedModel
from mmtrace.seeding import derive
from mmtrace.tracing import question

log = logging.getLogger(__name__)

CONSTRAINT_ROLES = ("first", "middle", "last")


def settings_from(cfg: config.Tracing, seed: int) -> question.TraceSettings:
    return question.TraceSettings(
        kinds=tuple(cfg.kinds),
        window_style=cfg.window_style,
        corruption=cfg.corruption,
        noise_scale=cfg.noise_scale,
        seed=seed,
        batch_size=cfg.batch_size,
    )


def plan(
    record: QuestionRecord, multimodal: bool, cfg: config.Tracing
) -> tuple[str, str, list[int]]:
    """(setting, corrupted constraint type, windows) for a question on a model of this role."""
    if not multimodal:
        return "llm", "visual", [cfg.llm_window]  # "visual" = the entity slot, named in words
    if record.constraint_type == "multi":
        return "multi", "textual", [cfg.multi_window]
    return "single", "visual", list(cfg.windows)


def corruption_pools(records: Iterable[QuestionRecord]) -> dict[str, list[str]]:
    """The phrases a `natural` corruption draws from, per constraint type: entity names for the
    visual constraint (or the LLM's entity slot), other questions' textual constraints for the
    textual one (docs/method.md §4.2: "This place" -> "Paris city"). Pass every split's
    records: the world's names, not one split's, give every length a phrase."""
    names = sorted({r.subject for r in records if r.subject.strip()})
    textual = sorted({s.text for r in records for s in r.textual_spans})
    return {"visual": names, "textual": textual}


def trace_records(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    correct: dict[str, bool],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Tracing,
    seed: int,
    pools: dict[str, list[str]] | None = None,
) -> dict:
    """Trace the eligible questions; return {traces, excluded: {reason: n}, n_candidates}.
    `pools`: the natural corruption's phrases (default: from `records`, see corruption_pools)."""
    pools = corruption_pools(records) if pools is None else pools
    mm = loaded.is_multimodal
    template = templates.mllm if mm else templates.llm
    settings = settings_from(cfg, seed)
    traces: list[dict] = []
    excluded: Counter = Counter()
    candidates = 0
    for rec in progress(records, desc=f"tracing {loaded.name}"):
        setting, constraint, windows = plan(rec, mm, cfg)
        if setting == "llm" and rec.constraint_type == "multi":
            continue  # the LLM baseline is traced on single-constraint questions only
        candidates += 1
        if cfg.only_correct and not correct.get(rec.qid, False):
            excluded["answered incorrectly"] += 1
            continue
        try:
            enc = encode_record(loaded, rec, templates, data_dir)
        except AlignmentError as exc:
            log.warning("excluded: %s", exc)
            excluded["constraint not aligned to tokens"] += 1
            continue
        # noise corruption: a fresh, reproducible draw per question
        own = replace(settings, seed=derive(seed, "noise", rec.qid))
        prep = question.prepare(loaded, enc, template, question_text(rec, mm), constraint, own)
        if cfg.min_drop is not None and prep.p_clean - prep.p_corr < cfg.min_drop:
            excluded["corruption drop below min_drop"] += 1
            continue
        meta = {
            "model": loaded.name,
            "split": rec.split,
            "setting": setting,
            "constraint_type": rec.constraint_type,
        }
        traces.extend(question.run(loaded, prep, windows, own, meta))
    log.info(
        "%s: %d candidates, %d traced, excluded %s",
        loaded.name,
        candidates,
        len({t["qid"] for t in traces}),
        dict(excluded),
    )
    return {
        "n_candidates": candidates,
        "excluded": dict(sorted(excluded.items())),
        "traces": traces,
    }


def role_means(trace: dict, kind: str, roles: Iterable[str]) -> dict[str, np.ndarray]:
    """Mean IE over the positions of each role present in this trace (a layers vector each)."""
    ie = np.asarray(trace["ie"][kind], dtype=float)
    out = {}
    for role in roles:
        rows = [i for i, r in enumerate(trace["roles"]) if r == role]
        if rows:
            out[role] = ie[rows].mean(axis=0)
    return out


def constraint_curve(trace: dict, kind: str) -> np.ndarray:
    """Mean IE over the corrupted constraint's tokens, per layer."""
    ie = np.asarray(trace["ie"][kind], dtype=float)
    rows = [i for i, r in enumerate(trace["roles"]) if r in CONSTRAINT_ROLES]
    return ie[rows].mean(axis=0)


def summarise(shards: list[dict]) -> dict:
    """Per model, split, setting, kind and window: questions traced and excluded, mean p_clean
    and p_corr, and the layer of peak mean IE at the constraint tokens."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    meta: dict[tuple, dict] = {}
    for shard in shards:
        key = (shard["model"], shard["split"])
        m = meta.setdefault(key, {"n_candidates": 0, "excluded": Counter()})
        m["n_candidates"] += shard["n_candidates"]
        m["excluded"].update(shard["excluded"])
        for t in shard["traces"]:
            for kind in t["ie"]:
                groups[key + (t["setting"], kind, t["window"])].append(t)
    out: dict = {}
    for (model, split), m in sorted(meta.items()):
        entry = out.setdefault(model, {}).setdefault(split, {})
        entry["n_candidates"] = m["n_candidates"]
        entry["excluded"] = dict(sorted(m["excluded"].items()))
        entry["traces"] = {}
    for (model, split, setting, kind, window), ts in sorted(groups.items()):
        curve = np.mean([constraint_curve(t, kind) for t in ts], axis=0)
        layers = ts[0]["layers"]
        entry = out[model][split]["traces"].setdefault(setting, {}).setdefault(kind, {})
        entry[f"window_{window}"] = {
            "window": window,
            "window_style": ts[0]["window_style"],
            "n_traced": len(ts),
            "mean_p_clean": float(np.mean([t["p_clean"] for t in ts])),
            "mean_p_corr": float(np.mean([t["p_corr"] for t in ts])),
            "peak_layer_at_constraint": int(layers[int(np.argmax(curve))]),
            "peak_mean_ie_at_constraint": float(np.max(curve)),
            "mean_ie_at_constraint_by_layer": [float(v) for v in curve],
        }
    return out
