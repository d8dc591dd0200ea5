"""rules/tables.smk: LaTeX tables (booktabs) laid out like the paper's, from jinja2 templates."""

from __future__ import annotations

from pathlib import Path

from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_text


def table_dataset_stats(*, csvs: list[Path], table: Path) -> None:
    """Questions per split and constraint type."""
    from mmtrace.report.tables import render_dataset_stats

    write_text(table, render_dataset_stats(load_questions(csvs)))


def table_model_accuracy(*, accuracy: Path, table: Path) -> None:
    """Each model's accuracy per split."""
    from mmtrace.report.tables import render_model_accuracy

    write_text(table, render_model_accuracy(read_json(accuracy)))
