"""Loading the released VQA-Constraints CSVs and the E-VQA subset: span location with fallbacks,
answer joins (known_1000, Movies, OK-VQA by index + image id), the image rules, the official VQA
accuracy, the drop report, a pickle loader that refuses code, and every row of the shared copies
(when present) either loaded or reported."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from mmtrace.realdata import (
    find_span,
    folder_image,
    load_evqa,
    load_known,
    load_movies,
    load_okvqa,
    load_plain_pickle,
    normalize_vqa_answer,
    parse_image_ids,
    vqa_accuracy,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_find_span_fallbacks():
    assert find_span("This building is tall", "This building") == (0, 13)
    assert find_span("Name a movie by this director?", "This director") == (16, 29)
    assert find_span("This application, a product", "This application,") == (0, 17)
    assert find_span("What is this plant?", "this plant ") == (8, 18)
    assert find_span("What is this?", "that dog") is None


def test_load_known_joins_and_reports(tmp_path):
    facts = [
        {"subject": "Peru", "prompt": "The official language of Peru is", "attribute": "Spanish"},
        {"subject": "Peru", "prompt": "Peru's capital,", "attribute": "Lima"},
        {
            "subject": "Vinson Massif",
            "prompt": "Vinson Massif is located in",
            "attribute": "Antarctica",
        },
    ]
    (tmp_path / "k.json").write_text(json.dumps(facts))
    (tmp_path / "k.csv").write_text(
        ",question,subject,main_entity,image_url\n"
        "0,The capital of this country is,Peru,this country,./a\n"
        "1,This mountain is located in,Vinson Massif,This mountain,./b\n"
        "2,This tower is in,Space Needle,This tower,./c\n"
        "3,Where is it?,Vinson Massif,This peak,./d\n"
        '4,"This country, whose language is",Peru,"This country,",./e\n'
    )
    rows, rep = load_known(tmp_path / "k.csv", tmp_path / "k.json")
    assert {r.index: r.answers for r in rows} == {0: ["Lima"], 1: ["Antarctica"], 4: ["Spanish"]}
    assert rep.kept == 3 and rep.total == 5
    assert rep.dropped == {
        "subject not in known_1000": 1,
        "main_entity not found in the question": 1,
    }
    assert "rows [2]" in rep.summary() and "rows [3]" in rep.summary()
    r0 = rows[0]
    assert r0.question[r0.start : r0.end] == "this country"


def test_load_movies_and_safe_pickle(tmp_path):
    table = [
        {"movie_name": "Baraka", "director_name": "Ron Fricke", "popularity": 1.0},
        {"movie_name": "Samsara", "director_name": "Ron Fricke", "popularity": 1.0},
    ]
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(table))
    (tmp_path / "m.csv").write_text(
        ",question,director,main_entity,image_url\n"
        "0,Name a movie directed by this director?,Ron Fricke,this director,./a\n"
        "1,Name a movie directed by this director?,Nobody,this director,./b\n"
    )
    rows, rep = load_movies(tmp_path / "m.csv", tmp_path / "m.pkl")
    assert [r.answers for r in rows] == [["Baraka", "Samsara"]]
    assert rep.dropped == {"director not in the Movies table": 1}
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Path("x")))  # references a class
    with pytest.raises(pickle.UnpicklingError, match="plain data only"):
        load_plain_pickle(tmp_path / "evil.pkl")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_every_released_row_loads_or_is_reported():
    vqa = SHARED / "vqa_constraints"
    known, rep_k = load_known(vqa / "multimodal_known.csv", SHARED / "rome" / "known_1000.json")
    movies, rep_m = load_movies(vqa / "multimodal_movies.csv", SHARED / "movies" / "movies.pkl")
    assert rep_k.total == 1204 and rep_m.total == 3214  # every data row accounted for
    assert rep_k.kept == len(known) >= 1190 and rep_m.kept == len(movies) >= 3200
    for r in known + movies:
        assert r.answers and r.question[r.start : r.end].lower().strip() != ""
    print(rep_k.summary())
    print(rep_m.summary())


# -- OK-VQA, VQA accuracy, images, E-VQA ------------------------------------------------------
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "realdata"


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


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Two", "2"),
        ("a dog.", "dog"),
        ("The Dog's bed", "dog's bed"),
        ("dont", "don't"),
        ("t-shirt", "t shirt"),
        ("1,000", "1000"),
        ("yes!", "yes"),
        ("3.5", "3.5"),
        ("fish - chips", "fish chips"),
    ],
)
def test_normalize_vqa_answer(raw, norm):
    assert normalize_vqa_answer(raw) == norm


def test_vqa_accuracy_hand_computed():
    assert vqa_accuracy("two", ["2"] * 10) == 1.0
    # 3 of 10 agree: the 3 subsets without one of them have 2 matches (2/3), the 7 others 3
    assert vqa_accuracy("2", ["2"] * 3 + ["3"] * 7) == pytest.approx((3 * 2 / 3 + 7) / 10)
    # 2 of 10: 2 subsets with 1 match (1/3), 8 with 2 (2/3)
    assert vqa_accuracy("Red.", ["red"] * 2 + ["blue"] * 8) == pytest.approx(0.6)
    # 1 of 10: 9 subsets with 1 match
    assert vqa_accuracy("red", ["red"] + ["blue"] * 9) == pytest.approx(0.3)
    assert vqa_accuracy("green", ["red"] * 10) == 0.0
    with pytest.raises(ValueError):
        vqa_accuracy("x", [])


def test_folder_image_rule(tmp_path):
    images = tmp_path / "data" / "known_images"
    (images / "A photo of Peru").mkdir(parents=True)
    for name in ("a.txt", "c.jpg", "b.PNG"):
        (images / "A photo of Peru" / name).write_bytes(b"x")
    (images / "A photo of Empty").mkdir()
    assert folder_image("./A photo of Peru", images) == ("known_images/A photo of Peru/b.PNG", None)
    assert folder_image("./A photo of Peru", images, data_dir=images) == (
        "A photo of Peru/b.PNG",
        None,
    )
    assert folder_image("./A photo of Empty", images) == (None, "no image in folder")
    assert folder_image("./A photo of Nobody", images) == (None, "image folder missing")
    assert folder_image("./A photo of Nobody", None) == ("A photo of Nobody", None)


def test_load_known_with_images_reports_missing(tmp_path):
    facts = [{"subject": "Peru", "prompt": "Peru's capital,", "attribute": "Lima"}]
    facts.append({"subject": "Chile", "prompt": "Chile's capital,", "attribute": "Santiago"})
    (tmp_path / "k.json").write_text(json.dumps(facts))
    (tmp_path / "k.csv").write_text(
        ",question,subject,main_entity,image_url\n"
        "0,The capital of this country is,Peru,this country,./A photo of Peru\n"
        "1,The capital of this country is,Chile,this country,./A photo of Chile\n"
    )
    (tmp_path / "img" / "A photo of Peru").mkdir(parents=True)
    (tmp_path / "img" / "A photo of Peru" / "1.webp").write_bytes(b"x")
    rows, rep = load_known(tmp_path / "k.csv", tmp_path / "k.json", images_dir=tmp_path / "img")
    assert [r.image for r in rows] == ["img/A photo of Peru/1.webp"]
    assert rep.dropped == {"image folder missing": 1}


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
