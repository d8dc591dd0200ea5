"""rules/figures.smk: the figures that belong to no analysis (the toy world's examples)."""

from __future__ import annotations

from pathlib import Path

from mmtrace.dataset import load_questions


def toy_world_examples(*, csvs: list[Path], images: Path, seed: int, pdf: Path) -> None:
    """A few of the toy world's drawn images with their questions, per split."""
    from mmtrace.report.examples import toy_world_examples as draw

    draw(images.parent, load_questions(csvs), pdf.with_suffix(""), seed=seed)
