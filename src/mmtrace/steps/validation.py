"""rules/validation.smk: every method scored against the controls (`mmtrace.validation`), its
summary, figure and table."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from mmtrace import config
from mmtrace.io import read_json, write_json, write_text

log = logging.getLogger(__name__)


def validation(
    *,
    controls: dict,
    truths: list[Path],
    trace_shards: list[Path],
    attention_shards: list[Path],
    ablation_shards: list[Path],
    edit_summary: Path,
    rules: dict,
    data: dict,
    image_size: int,
    patch: int,
    summary: Path,
) -> None:
    """Apply the config's validation rules to the controls' traces, contributions, knockouts
    and edits (see `mmtrace.validation`). `data`: each control's data (`default` | `planted`)."""
    from mmtrace.toyworld.planted import planted_tokens
    from mmtrace.validation.summary import summarise

    def records(paths: list[Path], key: str) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for p in paths:
            shard = read_json(p)
            out[shard["model"]].extend(shard[key])
        return out

    truth_of = {p.parent.name: read_json(p) for p in truths}
    result = summarise(
        controls,
        truth_of,
        records(trace_shards, "traces"),
        records(attention_shards, "records"),
        records(ablation_shards, "records"),
        read_json(edit_summary),
        config.Validation(**rules),
        {m: planted_tokens(image_size, patch) for m, d in data.items() if d == "planted"},
    )
    for model, entry in result["models"].items():
        if entry["control"] == "positive":
            log.info(
                "%s (positive control): %d of %d rules pass%s",
                model,
                entry["passed"],
                entry["total"],
                f"; failed: {entry['failed']}" if entry["failed"] else "",
            )
        else:
            log.info(
                "%s (negative control): %d of %d claims fire%s",
                model,
                len(entry["fired"]),
                entry["total"],
                f": {entry['fired']}" if entry["fired"] else "",
            )
    write_json(summary, result)


def fig_validation(*, summary: Path, pdf: Path) -> None:
    """The validation figure: each rule's statistic per control against its threshold."""
    from mmtrace.report.validation import fig_validation as draw

    draw(read_json(summary), pdf.with_suffix(""))


def table_validation(*, summary: Path, table: Path) -> None:
    """The validation table (LaTeX, booktabs)."""
    from mmtrace.report.validation import render_table

    write_text(table, render_table(read_json(summary)))
