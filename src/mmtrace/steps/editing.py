"""rules/editing.smk: per MLLM the layer sweep and the tuning fronts (`edit_sweep`), MultEdit and
its baselines per scenario and shard on the held-out cases, their summary, Figs. 6 and 14, the
fronts figure and the editing table."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json, write_text
from mmtrace.steps.common import model_job, read_scores, shard_of, templates_for

log = logging.getLogger(__name__)


def edit_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    sweep: Path,
    prompts: dict,
    editing: dict,
    scenario: str,
    seed: int,
    shard: int,
    threads: int,
    edits: Path,
) -> None:
    """MultEdit and the baselines on one shard of one scenario's held-out cases, each method at
    the setting chosen on the tuning split (`sweep`'s `tuning`; docs/method.md §7)."""
    from mmtrace.editing import study

    settings = config.Editing(**editing)
    tuning = read_json(sweep).get("tuning", {}).get(scenario)
    if settings.tuning is not None and tuning is None:
        raise ValueError(f"{sweep}: no tuning of scenario {scenario!r} (rerun edit_sweep)")
    chosen = tuning["chosen"] if tuning else {}
    set_apart = set(tuning["qids"]) if tuning else set()
    loaded = model_job(model, checkpoint, spec, threads)
    records = load_questions(csvs)
    cases = [
        c for c in study.cases(scenario, records, read_scores(scores)) if c.qid not in set_apart
    ]
    log.info(
        "%s %s: %d held-out cases (%d set apart for tuning); settings %s",
        model,
        scenario,
        len(cases),
        len(set_apart),
        chosen or "from config",
    )
    result = study.run_edits(
        loaded,
        scenario,
        shard_of(cases, shard, settings.shards, settings.max_edits),
        records,
        templates_for(loaded, prompts),
        csvs[0].parent,
        settings,
        seed,
        study.tuned_methods(settings, chosen),
    )
    write_json(
        edits,
        {
            "model": model,
            "shard": shard,
            "settings": chosen,
            "variants": settings.variants,
            **result,
        },
    )


def edit_sweep(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    prompts: dict,
    editing: dict,
    tracing: dict,
    seed: int,
    threads: int,
    sweep: Path,
) -> None:
    """Fig. 14's layer sweep, on the first questions of `editing.sweep_scenario` (the errors by
    default), with each of those questions' tracing effect at the edit site per layer (Hase et
    al.'s test; `mmtrace.tracing.localisation`), and per scenario the tuning split's fronts and
    chosen settings (F5)."""
    from mmtrace.editing import layer_sweep, study, tuning
    from mmtrace.models.lookup import locate
    from mmtrace.tracing.localisation import constraint_effects

    settings = config.Editing(**editing)
    loaded = model_job(model, checkpoint, spec, threads)
    records = load_questions(csvs)
    scores_ = read_scores(scores)
    templates, data_dir = templates_for(loaded, prompts), csvs[0].parent
    targets = study.cases(settings.sweep_scenario, records, scores_)[: settings.sweep_edits]
    layers = settings.sweep_layers or list(range(len(locate(loaded.model))))
    result = layer_sweep.sweeps(loaded, targets, templates, data_dir, settings, layers, seed)
    result["localisation"] = constraint_effects(
        loaded,
        targets,
        templates,
        data_dir,
        config.Tracing(**tracing),
        seed,
        records,
        kind=settings.localisation_kind,
        window=settings.localisation_window,
    )
    if settings.tuning is not None:
        result["tuning"] = {
            scenario: tuning.tune(
                loaded,
                scenario,
                study.cases(scenario, records, scores_),
                records,
                templates,
                data_dir,
                settings,
                seed,
            )
            for scenario in settings.scenarios
        }
    write_json(sweep, result)


def edit_summary(*, shards: list[Path], sweeps: list[Path], editing: dict, summary: Path) -> None:
    """Per model, scenario and method: efficacy, generalisation, specificity; the sweeps."""
    from mmtrace.editing.layer_sweep import summarise_sweep
    from mmtrace.editing.study import summarise_edits
    from mmtrace.editing.tuning import summarise_tuning

    result = summarise_edits([read_json(p) for p in shards], config.Editing(**editing))
    for p in sweeps:
        sweep = read_json(p)
        entry = result.setdefault(sweep["model"], {"layer": sweep["layer"], "scenarios": {}})
        entry["sweep"] = summarise_sweep(sweep)
        for scenario, tuning in sweep.get("tuning", {}).items():
            if scenario in entry["scenarios"]:
                entry["scenarios"][scenario]["tuning"] = summarise_tuning(tuning)
    for model, entry in result.items():
        for scenario, e in entry["scenarios"].items():
            for method in ("multedit", "finetune", "finetune_constrained"):
                if method in e:
                    m = e[method]
                    log.info(
                        "%s %s %s (n=%d): efficacy %.3f, generalisation %s, specificity %s",
                        model,
                        scenario,
                        method,
                        m["n"],
                        m["efficacy"]["mean"],
                        m["generalisation"].get("mean"),
                        m["specificity"].get("mean"),
                    )
    write_json(summary, result)


def fig_editing(
    *,
    summary: Path,
    trace_summary: Path,
    model: str,
    alpha: float,
    methods: Path,
    layers: Path,
    fronts: Path,
) -> None:
    """Fig. 6 (`methods`, its stars at the claims' `alpha`, Holm), Fig. 14 (`layers`, with the
    traced IE beside the efficacy) and the tuning fronts (`fronts`), in one job: all read the
    same summaries."""
    from mmtrace.report import editing

    edits = read_json(summary)
    editing.fig_methods(edits, model, methods.with_suffix(""), alpha)
    editing.fig_layers(edits, read_json(trace_summary), model, layers.with_suffix(""))
    editing.fig_fronts(edits, model, fronts.with_suffix(""))


def table_editing(*, summary: Path, table: Path) -> None:
    """The editing table (LaTeX, booktabs)."""
    from mmtrace.report.tables import render_editing

    write_text(table, render_editing(read_json(summary)))
