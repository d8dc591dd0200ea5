"""The long-tail editing subset of Encyclopedic-VQA: image ids, the subset rule (dataset, type,
keyword, dedupe, cap, seeded order) and the landmark image rule."""

from __future__ import annotations

from pathlib import Path

from mmtrace.paperworld.evqa import load_evqa, parse_image_ids

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "realdata"


def test_parse_image_ids():
    assert parse_image_ids("a1|b2") == ["a1", "b2"]
    assert parse_image_ids("['a1', 'b2']") == ["a1", "b2"]
    assert parse_image_ids("a1,b2") == ["a1", "b2"]
    assert parse_image_ids("") == []


def test_load_evqa_subset_rule(tmp_path):
    rows, rep = load_evqa(FIXTURES / "evqa.csv", max_rows=10, seed=0)
    assert rep.total == 8  # every CSV row kept or reported
    assert rep.dropped["dataset_name is not landmarks"] == 1
    assert rep.dropped["question_type is not templated"] == 1
    assert rep.dropped["question does not ask about 'country'"] == 1
    assert rep.dropped["no answer"] == 1
    assert rep.dropped["duplicate wikipedia_url"] == 1  # two Notre-Dame questions: one kept
    assert {r.subject for r in rows} == {
        "Notre-Dame de Paris",
        "Neuschwanstein Castle",
        "Alhambra",
    }
    castle = next(r for r in rows if r.subject == "Neuschwanstein Castle")
    assert castle.question[castle.start : castle.end] == "this castle"
    assert castle.image == "img004.jpg" and castle.answers == ["Germany"]
    assert all(r.split == "heldout" for r in rows)
    # deterministic, seeded, capped
    again, _ = load_evqa(FIXTURES / "evqa.csv", max_rows=10, seed=0)
    assert [r.index for r in again] == [r.index for r in rows]
    capped, rep2 = load_evqa(FIXTURES / "evqa.csv", max_rows=1, seed=0)
    assert len(capped) == 1 and rep2.dropped["over max_rows"] == 2 and rep2.total == 8
    # images: <images_dir>/<first id>.jpg
    (tmp_path / "gld").mkdir()
    (tmp_path / "gld" / "img004.jpg").write_bytes(b"x")
    checked, rep3 = load_evqa(FIXTURES / "evqa.csv", images_dir=tmp_path / "gld", max_rows=10)
    assert [r.image for r in checked] == ["gld/img004.jpg"]
    # both Notre-Dame rows lack their image (the second is no longer a duplicate), the palace too
    assert rep3.dropped["image file missing"] == 3 and "duplicate wikipedia_url" not in rep3.dropped
