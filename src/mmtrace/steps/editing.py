"""rules/editing.smk: MultEdit and its baselines per MLLM, scenario and shard, the layer, clamp
and steps sweeps, their summary, Figs. 6 and 14 and the editing table."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json, write_text
from mmtrace.steps.common import model_job, read_scores, shard_of

log = logging.getLogger(__name__)


def edit_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    prompts: dict,
    editing: dict,
    scenario: str,
    seed: int,
    shard: int,
    threads: int,
    edits: Path,
) -> None:
    """MultEdit and the baselines on one shard of one scenario (docs/method.md §7)."""
    from mmtrace.editing import study

    settings = config.Editing(**editing)
    loaded = model_job(model, checkpoint, spec, threads)
    records = load_questions(csvs)
    cases = study.cases(scenario, records, read_scores(scores))
    result = study.run_edits(
        loaded,
        scenario,
        shard_of(cases, shard, settings.shards, settings.max_edits),
        records,
        config.Prompts(**prompts),
        csvs[0].parent,
        settings,
        seed,
    )
    write_json(edits, {"model": model, "shard": shard, **result})


def edit_sweep(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    prompts: dict,
    editing: dict,
    seed: int,
    threads: int,
    sweep: Path,
) -> None:
    """Fig. 14's layer sweep and the clamp and steps sweeps, on the first questions of
    `editing.sweep_scenario` (the errors by default)."""
    from mmtrace.editing import study
    from mmtrace.models.lookup import locate

    settings = config.Editing(**editing)
    loaded = model_job(model, checkpoint, spec, threads)
    targets = study.cases(settings.sweep_scenario, load_questions(csvs), read_scores(scores))
    targets = targets[: settings.sweep_edits]
    layers = settings.sweep_layers or list(range(len(locate(loaded.model))))
    write_json(
        sweep,
        study.sweeps(
            loaded, targets, config.Prompts(**prompts), csvs[0].parent, settings, layers, seed
        ),
    )


def edit_summary(*, shards: list[Path], sweeps: list[Path], editing: dict, summary: Path) -> None:
    """Per model, scenario and method: efficacy, generalisation, specificity; the sweeps."""
    from mmtrace.editing.study import summarise_edits, summarise_sweep

    result = summarise_edits([read_json(p) for p in shards], config.Editing(**editing))
    for p in sweeps:
        sweep = read_json(p)
        result.setdefault(sweep["model"], {"layer": sweep["layer"], "scenarios": {}})
        result[sweep["model"]]["sweep"] = summarise_sweep(sweep)
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
    *, summary: Path, trace_summary: Path, model: str, methods: Path, layers: Path
) -> None:
    """Fig. 6 (`methods`) and Fig. 14 (`layers`, with the traced IE beside the efficacy), in one
    job: both read the same summaries."""
    from mmtrace.report import editing

    edits = read_json(summary)
    editing.fig_methods(edits, model, methods.with_suffix(""))
    editing.fig_layers(edits, read_json(trace_summary), model, layers.with_suffix(""))


def table_editing(*, summary: Path, table: Path) -> None:
    """The editing table (LaTeX, booktabs)."""
    from mmtrace.report.tables import render_editing

    write_text(table, render_editing(read_json(summary)))
