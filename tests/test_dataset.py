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


@pytest.mark.parametrize("path", ["../secret.png", "/etc/passwd", "images/../../x.png", "C:/x.png"])
def test_image_paths_must_stay_inside_the_data_folder(tiny_world, tmp_path, path):
    bad = tmp_path / "known.csv"
    _corrupt(tiny_world / "known.csv", bad, 2, "image_url", path)
    with pytest.raises(DataError, match=r"row 2: field 'image_url'.*relative path inside"):
        load_split(bad)


def test_a_colon_inside_a_relative_path_is_not_a_drive_letter(tiny_world, tmp_path):
    """The release's folder "A photo of Il Postino: The Postman" is a relative path."""
    ok = tmp_path / "known.csv"
    _corrupt(tiny_world / "known.csv", ok, 2, "image_url", "A photo of Il Postino: The Postman")
    assert load_split(ok)[1].image_url == "A photo of Il Postino: The Postman"


def test_a_repeated_question_id_is_refused_on_load_and_on_write(tiny_world, tmp_path):
    from mmtrace.dataset import write_split

    bad = tmp_path / "known.csv"
    with open(tiny_world / "known.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("qid")
    rows[4][col] = rows[2][col]
    with open(bad, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    with pytest.raises(DataError, match=r"rows 2 and 4: field 'qid'.*repeated"):
        load_split(bad)
    recs = [r.model_dump() for r in load_split(tiny_world / "known.csv")[:3]]
    out = tmp_path / "out.csv"
    with pytest.raises(DataError, match="used by rows 1 and 3"):
        write_split(out, "known", [recs[0], recs[1], recs[0]])
    assert not out.exists()


def _lines(path):
    return path.read_bytes().split(b"\n")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ls: ls[:3] + [ls[3].rsplit(b",", 3)[0]] + ls[4:], "row 3: truncated"),
        (lambda ls: ls[:2] + [ls[2] + b",extra"] + ls[3:], "row 2: .* fields, but the header"),
        (lambda ls: ls[:5] + [ls[5].replace(b"This", b"Th\xe9s", 1)] + ls[6:], "line 6: .*UTF-8"),
        (
            lambda ls: [ls[0].replace(b"image_url", b"image")] + ls[1:],
            "header: missing .*image_url",
        ),
    ],
)
def test_malformed_files_name_file_row_and_reason(tiny_world, tmp_path, edit, message):
    bad = tmp_path / "known.csv"
    bad.write_bytes(b"\n".join(edit(_lines(tiny_world / "known.csv"))))
    with pytest.raises(DataError, match=message) as exc:
        load_split(bad)
    assert str(bad) in str(exc.value)
