"""Toy-world example figure: writes both formats, deterministically, with a seeded mix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmtrace.dataset import QuestionRecord, load_questions
from mmtrace.report.examples import pick_examples, toy_world_examples
from mmtrace.toyworld.generate import SPLITS, generate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[QuestionRecord]]:
    out = tmp_path_factory.mktemp("tw")
    generate(out, 0, 20, 15, 15, 4, 16, 1)
    return out, load_questions([out / f"{s}.csv" for s in SPLITS])


def test_pick_examples_is_seeded_and_mixed(world: tuple[Path, list[QuestionRecord]]) -> None:
    _, records = world
    picks = pick_examples(records, "movies", 4, seed=0)
    assert [r.qid for r in picks] == [r.qid for r in pick_examples(records, "movies", 4, 0)]
    assert {r.split for r in picks} == {"movies"}
    assert len({r.qid for r in picks}) == 4
    assert {r.constraint_type for r in picks} == {"single", "multi"}
    seeds = {tuple(r.qid for r in pick_examples(records, "movies", 4, s)) for s in range(5)}
    assert len(seeds) > 1
    few = [r for r in records if r.split == "heldout"][:2]
    assert len(pick_examples(few, "heldout", 4, seed=0)) == 2


def test_toy_world_examples_writes_pdf_and_png(
    world: tuple[Path, list[QuestionRecord]], tmp_path: Path
) -> None:
    data_dir, records = world
    paths = toy_world_examples(data_dir, records, tmp_path / "a" / "examples", per_split=3)
    assert [p.name for p in paths] == ["examples.pdf", "examples.png"]
    assert paths[0].read_bytes().startswith(b"%PDF")
    assert paths[1].read_bytes().startswith(b"\x89PNG")
    again = toy_world_examples(data_dir, records, tmp_path / "b" / "examples", per_split=3)
    for p, q in zip(paths, again, strict=True):
        assert p.read_bytes() == q.read_bytes()
