"""Loading the Movies split: every film of the director, most popular first, from a plain-data
pickle whose loader refuses code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mmtrace.paperworld.movies import load_movies, load_plain_pickle


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
