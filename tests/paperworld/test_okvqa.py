"""Loading the OK-VQA split: the join rule (index + image id, else image id + question
similarity), answers by frequency, the COCO image rule, and every released row (when the shared
copy is present) either loaded or reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmtrace.paperworld.okvqa import load_okvqa

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "realdata"


def test_load_okvqa_join_rule_and_answers():
    rows, rep = load_okvqa(
        FIXTURES / "okvqa.csv",
        FIXTURES / "okvqa_questions.json",
        FIXTURES / "okvqa_annotations.json",
    )
    by = {r.index: r for r in rows}
    assert sorted(by) == [0, 1, 2, 3, 7]
    assert rep.total == 9  # every CSV row (index 5 is absent, like 3188 in the release)
    assert rep.dropped == {
        "no annotation for the question_id": 1,  # row 4
        "not joined to an OK-VQA question": 1,  # row 6: no question on that image
        "main_entity not found in the question": 1,  # row 8: "No element to extract."
        "image_url is not a COCO val2014 file name": 1,  # row 9
    }
    # row 3's question had a typo fixed: joined by index + image id, noted, not dropped
    assert by[3].meta["question_id"] == 949225 and by[3].answers == ["tail"]
    # row 7 has no JSON question at its index: joined by image id and question similarity
    assert by[7].meta["question_id"] == 111115
    assert rep.notes["joined by image id and question similarity"] == 1
    # answers by frequency, ties alphabetically; empty answers left out; all 10 kept raw
    assert by[0].answers == ["racing", "motocross", "riding"]
    assert by[1].answers == ["fern", "palm", "ficus"] and len(by[1].human_answers) == 10
    assert by[0].relation == "four" and by[0].image == "val2014/COCO_val2014_000000297147.jpg"
    # a rephrased main_entity ("this plant" for "...plant this is?") is recovered, and noted
    assert by[1].question[by[1].start : by[1].end] == "plant"


def test_okvqa_images_checked_when_a_dir_is_given(tmp_path):
    images = tmp_path / "data" / "coco"
    images.mkdir(parents=True)
    (images / "COCO_val2014_000000297147.jpg").write_bytes(b"x")
    rows, rep = load_okvqa(
        FIXTURES / "okvqa.csv",
        FIXTURES / "okvqa_questions.json",
        FIXTURES / "okvqa_annotations.json",
        images_dir=images,
    )
    assert [r.image for r in rows] == ["coco/COCO_val2014_000000297147.jpg"]
    assert rep.dropped["image file missing"] == 4 and rep.total == 9


def okvqa_fixture_annotations(questions_json: Path, out: Path) -> Path:
    """A SYNTHETIC annotations file for the real questions (the real val annotations are not in
    shared/data): 10 answers per question, so the join and the row accounting can be checked."""
    qs = json.loads(questions_json.read_text(encoding="utf-8"))["questions"]
    anns = [
        {
            "question_id": q["question_id"],
            "image_id": q["image_id"],
            "question_type": "other",
            "answer_type": "other",
            "answers": [
                {"answer": "fixture", "raw_answer": "fixture", "answer_confidence": "yes",
                 "answer_id": k + 1}
                for k in range(10)
            ],
        }
        for q in qs
    ]  # fmt: skip
    out.write_text(json.dumps({"annotations": anns}))
    return out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_every_released_okvqa_row_loads_or_is_reported(tmp_path):
    qjson = SHARED / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"
    ann = okvqa_fixture_annotations(qjson, tmp_path / "synthetic_annotations.json")
    rows, rep = load_okvqa(SHARED / "vqa_constraints" / "okvqa.csv", qjson, ann)
    assert rep.total == 5045 and rep.kept == len(rows) >= 5000
    assert rep.notes["joined by image id and question similarity"] == 0  # index + image id
    assert len({r.meta["question_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r.question[r.start : r.end].strip() and len(r.human_answers) == 10
    print(rep.summary())
