"""F5 on fronts (docs/method.md §7): each method's own hyperparameters are swept on a tuning
split, and each method is compared on the held-out edits at the setting a rule fixed in config
(`config.Tuning`) chose there, never at one arbitrary setting, and never on the edits that
chose it. `tune` runs one scenario's grid; `choose` is the rule; `summarise_tuning` is what the
summary, the fronts figure and the F5 verdict read."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mmtrace import config
from mmtrace.dataset import QuestionRecord
from mmtrace.editing.study import METHODS, Method, method_table, run_edits
from mmtrace.models.loading import LoadedModel
from mmtrace.seeding import derive

log = logging.getLogger(__name__)


def grid_methods(cfg: config.Editing) -> dict[str, Method]:
    """Every setting of every method's tuning grid, named `method#i` (i: the grid index)."""
    if cfg.tuning is None:
        raise ValueError("editing.tuning is null: there is no grid to run")
    return {
        f"{method}#{i}": method_table(cfg.tuned(method, setting))[method]
        for method in METHODS
        for i, setting in enumerate(cfg.tuning.grid(method))
    }


def split_tuning(
    cases: list[QuestionRecord], n: int, seed: int
) -> tuple[list[QuestionRecord], list[QuestionRecord]]:
    """(tuning, held-out): a seeded draw of min(n, half of the cases) set apart, both in file
    order; the held-out cases never inform a method's setting."""
    k = min(n, len(cases) // 2)
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(len(cases), k, replace=False).tolist()) if k else set()
    return (
        [c for i, c in enumerate(cases) if i in picked],
        [c for i, c in enumerate(cases) if i not in picked],
    )


def choose(front: list[dict], max_drop: float) -> int:
    """The rule of `config.Tuning`: the highest mean efficacy among the settings losing at most
    `max_drop` of specificity; if none does, the smallest loss; ties to the first setting."""
    ok = [i for i, f in enumerate(front) if f["specificity_drop"] <= max_drop]
    if ok:
        return max(ok, key=lambda i: (front[i]["efficacy"], -i))
    return min(range(len(front)), key=lambda i: (front[i]["specificity_drop"], i))


def front_of(records: list[dict], tuning: config.Tuning) -> dict:
    """Per method: each grid setting's means over the tuning edits (efficacy, generalisation,
    specificity drop = unedited minus edited, paired per edit) and the chosen index."""
    out = {}
    for method in METHODS:
        points = []
        for i, setting in enumerate(tuning.grid(method)):
            name = f"{method}#{i}"
            rows = [r for r in records if name in r["methods"]]
            drops = [
                r["unedited"]["specificity"] - r["methods"][name]["specificity"]
                for r in rows
                if r["unedited"]["specificity"] is not None
            ]
            gens = [
                r["methods"][name]["generalisation"]
                for r in rows
                if r["methods"][name]["generalisation"] is not None
            ]
            points.append(
                {
                    "setting": setting,
                    "n": len(rows),
                    "efficacy": float(np.mean([r["methods"][name]["efficacy"] for r in rows]))
                    if rows
                    else float("nan"),
                    "generalisation": float(np.mean(gens)) if gens else None,
                    "specificity_drop": float(np.mean(drops)) if drops else 0.0,
                }
            )
        out[method] = {"points": points, "chosen": choose(points, tuning.max_specificity_drop)}
    return out


def tune(
    loaded: LoadedModel,
    scenario: str,
    cases: list[QuestionRecord],
    everything: list[QuestionRecord],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Editing,
    seed: int,
) -> dict:
    """One scenario's tuning split: every grid setting of every method on the tuning cases, the
    front and each method's chosen setting (`config.Tuning`)."""
    if cfg.tuning is None:
        raise ValueError("editing.tuning is null: nothing to tune")
    tuning, _ = split_tuning(cases, cfg.tuning.edits, derive(seed, "tuning", scenario))
    ran = run_edits(
        loaded, scenario, tuning, everything, templates, data_dir, cfg, seed, grid_methods(cfg)
    )
    front = front_of(ran["records"], cfg.tuning)
    chosen = {m: cfg.tuning.grid(m)[f["chosen"]] for m, f in front.items()}
    for m, f in front.items():
        log.info("%s %s: %s chooses %s of %s", loaded.name, scenario, m, chosen[m], f["points"])
    return {
        "scenario": scenario,
        "qids": [r.qid for r in tuning],
        "records": ran["records"],
        "front": front,
        "chosen": chosen,
    }


def summarise_tuning(tuning: dict) -> dict:
    """One scenario's front for the summary: the points and the chosen setting per method."""
    return {
        "n": len(tuning["qids"]),
        "qids": tuning["qids"],
        "front": tuning["front"],
        "chosen": tuning["chosen"],
    }
