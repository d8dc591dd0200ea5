"""Loading the Known split: answers joined from known_1000 by subject (several facts resolved by
the question), the drop report, missing image folders, and every row of the shared copies
(when present, with the Movies split) either loaded or reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmtrace.paperworld.known import load_known
from mmtrace.paperworld.movies import load_movies

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


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


def test_messy_rows_are_reported_not_fatal_and_a_repeated_index_is_dropped(tmp_path):
    facts = [{"subject": "Peru", "prompt": "Peru's capital,", "attribute": "Lima"}]
    (tmp_path / "k.json").write_text(json.dumps(facts))
    (tmp_path / "k.csv").write_text(
        ",question,subject,main_entity,image_url\n"
        "0,The capital of this country is,Peru,this country,./a\n"
        "0,The capital of this country is,Peru,this country,./b\n"  # repeated index
        "2,The capital of this country is,Peru\n"  # truncated
        "3,The capital of this country is,Peru,this country,./c,extra\n"  # extra field
    )
    rows, rep = load_known(tmp_path / "k.csv", tmp_path / "k.json")
    assert [r.index for r in rows] == [0] and rows[0].image == "a"
    assert rep.dropped == {
        "index repeated (an earlier row has it; question ids must be unique)": 1,
        "malformed row: fewer fields than the header": 1,
        "malformed row: more fields than the header": 1,
    }


def test_an_unreadable_file_is_an_error_naming_it(tmp_path):
    from mmtrace.dataset import DataError

    (tmp_path / "k.json").write_text("[]")
    bad = tmp_path / "k.csv"
    bad.write_bytes(b",question,subject,main_entity,image_url\n0,Th\xe9s country,Peru,x,./a\n")
    with pytest.raises(DataError, match=r"k\.csv: line 2: .*not UTF-8"):
        load_known(bad, tmp_path / "k.json")
    bad.write_text(",quest,subject,main_entity,image_url\n0,q,Peru,x,./a\n")
    with pytest.raises(DataError, match=r"k\.csv: header: missing column\(s\) question"):
        load_known(bad, tmp_path / "k.json")
