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
from mmtrace.models.encoding import AlignmentError, encode_question, encode_record, question_text
from mmtrace.models.loading import LoadedModel, load_image
from mmtrace.seeding import derive
from mmtrace.stats import greater_than_zero, holm, mean_ci
from mmtrace.tracing import controls, question
from mmtrace.tracing.roles import CONSTRAINT_ROLES, constraint_curve

log = logging.getLogger(__name__)


def settings_from(cfg: config.Tracing, seed: int) -> question.TraceSettings:
    return question.TraceSettings(
        kinds=tuple(cfg.kinds),
        window_style=cfg.window_style,
        corruption=cfg.corruption,
        noise_scale=cfg.noise_scale,
        seed=seed,
        batch_size=cfg.batch_size,
        exact=cfg.exact,
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
    world: list[QuestionRecord] | None = None,
) -> dict:
    """Trace the eligible questions; return {traces, excluded: {reason: n}, n_candidates}.
    `world`: every question of the world (default: `records`), whose names the natural
    corruption draws from and whose images the image-swap control borrows."""
    world = records if world is None else world
    pools = corruption_pools(world)
    mm = loaded.is_multimodal
    template = templates.mllm if mm else templates.llm
    settings = settings_from(cfg, seed)
    traces: list[dict] = []
    excluded: Counter = Counter()
    candidates = swapped = 0
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
        # never the entity's own name or an answer to the question
        pool = [p for p in pools.get(constraint, []) if p != rec.subject and p not in rec.answers]
        prep = question.prepare(
            loaded, enc, template, question_text(rec, mm), constraint, own, pool=pool
        )
        if cfg.min_drop is not None and prep.p_clean - prep.p_corr < cfg.min_drop:
            excluded["corruption drop below min_drop"] += 1
            continue
        meta = {
            "model": loaded.name,
            "split": rec.split,
            "setting": setting,
            "constraint_type": rec.constraint_type,
        }
        records_of = question.run(loaded, prep, windows, own, meta)
        emb = controls.embedding_row(
            loaded.model,
            enc.inputs,
            prep.corrupted,
            prep.answer_id,
            enc.positions_to_trace(),
            prep.noise,
            cfg.batch_size,
        )
        for r in records_of:
            r["ie_embedding"] = emb
        if cfg.window_sweep:
            n_layers = len(records_of[0]["layers"])
            records_of[0]["window_sweep"] = question.sweep(
                loaded, prep, own, range(1, n_layers + 1)
            )
        if mm and setting == "single" and swapped < cfg.image_swap:
            other = _other_image(rec, world, data_dir, derive(seed, "swap", rec.qid))
            if other is not None:
                records_of[0]["image_swap"] = _image_swap(
                    loaded,
                    rec,
                    enc,
                    prep,
                    other,
                    template,
                    question_text(rec, mm),
                    own,
                    [min(windows)],
                )
                swapped += 1
        traces.extend(records_of)
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


def _other_image(
    rec: QuestionRecord, records: list[QuestionRecord], data_dir: Path, seed: int
) -> tuple[str, object] | None:
    """Another entity's image from the same records (seeded), and its question id."""
    others = sorted(
        {r.qid: r for r in records if r.entity_id != rec.entity_id and not r.held_out}.items()
    )
    if not others:
        return None
    qid, other = others[np.random.default_rng(seed).integers(len(others))]
    return qid, load_image(data_dir / other.image_url)


def _image_swap(loaded, rec, enc, prep, other, template, text, settings, windows) -> dict:
    """The question traced with another entity's image, the clean run's answer token kept."""
    qid, image = other
    swapped = encode_question(loaded, template, rec.qid, text, list(enc.spans.values()), image)
    swap_prep = question.prepare(
        loaded,
        swapped,
        template,
        text,
        prep.constraint,
        settings,
        answer_id=prep.answer_id,
        pool=[prep.replacement] if prep.replacement else (),
    )
    (record,) = question.run(loaded, swap_prep, windows, settings)
    return {
        "image_of": qid,
        "window": record["window"],
        "p_clean": record["p_clean"],
        "p_corr": record["p_corr"],
        "ie": record["ie"],
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


def embedding_at_constraint(trace: dict) -> float | None:
    """Mean IE of restoring only the input embedding (layer -1) over the constraint's tokens."""
    if "ie_embedding" not in trace:
        return None
    rows = [i for i, r in enumerate(trace["roles"]) if r in CONSTRAINT_ROLES]
    return float(np.mean([trace["ie_embedding"][i] for i in rows]))


def _swap_summary(ts: list[dict], kind: str) -> dict | None:
    """Peak IE at the constraint with the question's own image vs another entity's image (the
    same questions): visual storage needs the first to exceed the second."""
    pairs = [
        (t, t["image_swap"]) for t in ts if "image_swap" in t and kind in t["image_swap"]["ie"]
    ]
    if not pairs:
        return None
    real = [float(constraint_curve(t, kind).max()) for t, _s in pairs]
    swapped = [float(constraint_curve({**t, "ie": s["ie"]}, kind).max()) for t, s in pairs]
    return {
        "n": len(pairs),
        "peak_ie_own_image": float(np.mean(real)),
        "peak_ie_swapped_image": float(np.mean(swapped)),
    }


def _sweep_summary(ts: list[dict]) -> dict | None:
    """Per window and kind, the mean IE at the constraint per layer with Holm-adjusted
    p-values of IE > 0, and the corruption's mean drop p_clean - p_corr (what a window's
    restoration is measured against)."""
    swept = [t for t in ts if "window_sweep" in t]
    if not swept:
        return None
    windows = swept[0]["window_sweep"]["windows"]
    out: dict = {
        "n": len(swept),
        "windows": windows,
        "mean_drop": float(np.mean([t["p_clean"] - t["p_corr"] for t in swept])),
        "kinds": {},
    }
    for kind in swept[0]["window_sweep"]["ie"]:
        per_window = []
        for i in range(len(windows)):
            ie = np.array([t["window_sweep"]["ie"][kind][i] for t in swept])
            mean = ie.mean(axis=0)
            p = holm([greater_than_zero(ie[:, j]) for j in range(mean.size)])
            per_window.append(
                {
                    "mean_ie_by_layer": [float(v) for v in mean],
                    "p_holm_ie_positive_by_layer": [float(v) for v in p],
                }
            )
        out["kinds"][kind] = per_window
    return out


def summarise(shards: list[dict]) -> dict:
    """Per model, split, setting, kind and window: questions traced and excluded, mean p_clean
    and p_corr, the layer of peak mean IE at the constraint tokens, the embedding row there
    (identity restoration's level) and, where traced, the image-swap control."""
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
    sweeps: dict[tuple, list[dict]] = defaultdict(list)
    for shard in shards:
        for t in shard["traces"]:
            if "window_sweep" in t:
                sweeps[(shard["model"], shard["split"], t["setting"])].append(t)
    for (model, split, setting), ts in sorted(sweeps.items()):
        swept = _sweep_summary(ts)
        if swept:
            out[model][split].setdefault("window_sweep", {})[setting] = swept
    for (model, split, setting, kind, window), ts in sorted(groups.items()):
        per_question = np.array([constraint_curve(t, kind) for t in ts])
        curve, half = mean_ci(per_question)
        p_holm = holm([greater_than_zero(per_question[:, j]) for j in range(curve.size)])
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
            # t-intervals of the mean, and Holm-adjusted one-sided Wilcoxon p-values of IE > 0
            # across the layers: the evidence a "causal layer" needs (docs/method.md §4)
            "ci95_ie_at_constraint_by_layer": [
                [float(m - h), float(m + h)] for m, h in zip(curve, half, strict=True)
            ],
            "p_holm_ie_positive_by_layer": [float(p) for p in p_holm],
        }
        emb = [v for t in ts if (v := embedding_at_constraint(t)) is not None]
        if emb:
            entry[f"window_{window}"]["mean_embedding_ie_at_constraint"] = float(np.mean(emb))
        swap = _swap_summary(ts, kind)
        if swap:
            entry[f"window_{window}"]["image_swap"] = swap
    return out
