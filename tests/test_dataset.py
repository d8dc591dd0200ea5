import csv

import pytest

from mmtrace.dataset import DataError, load_split


def test_roundtrip(tiny_world):
    recs = load_split(tiny_world / "movies.csv")
    assert recs and all(r.split == "movies" for r in recs)
    multi = [r for r in recs if r.constraint_type == "multi"]
    assert multi and all(len(r.textual_spans) == 1 for r in multi)


def test_release_columns_come_first(tiny_world):
    header = (tiny_world / "known.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["", "question", "subject", "main_entity", "image_url"]
    header = (tiny_world / "movies.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["", "question", "director", "main_entity", "image_url"]
    header = (tiny_world / "okvqa.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["", "question", "main_entity", "image_url"]


def _corrupt(src, dst, row, field, value):
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index(field)
    rows[row][col] = value
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("constraints", "[{not json", "field 'constraints' is not valid JSON"),
        ("question", "A different question?", "field 'row'"),
        ("constraint_type", "triple", "field 'constraint_type'"),
    ],
)
def test_bad_rows_name_file_row_and_field(tiny_world, tmp_path, field, value, message):
    bad = tmp_path / "known.csv"
    _corrupt(tiny_world / "known.csv", bad, 3, field, value)
    with pytest.raises(DataError) as exc:
        load_split(bad)
    text = str(exc.value)
    assert str(bad) in text and "row 3" in text and message in text
