"""Loading the released VQA-Constraints CSVs: span location with fallbacks, answer joins, the
drop report, a pickle loader that refuses code, and every row of the shared copies (when present)
either loaded or reported."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from mmtrace.realdata import find_span, load_known, load_movies, load_plain_pickle

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
