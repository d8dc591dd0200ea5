"""LaTeX tables: counts agree with the data, names are escaped, output is byte-stable."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import matplotlib
import pytest
from matplotlib.figure import Figure

from mmtrace.dataset import QuestionRecord, load_questions
from mmtrace.report.style import save_figure
from mmtrace.report.tables import (
    TableCompileError,
    compile_tables,
    dataset_stats_rows,
    latex_escape,
    render_dataset_stats,
    render_model_accuracy,
    write_table,
)
from mmtrace.toyworld.generate import SPLITS, generate

ACC = {
    "llava_1.5 & friends": {
        "role": "mllm",
        "splits": {
            "known": {"n": 60, "accuracy": 0.5, "mean_p_answer": 0.12345},
            "okvqa": {"n": 45, "accuracy": 1 / 3, "mean_p_answer": 0.5},
        },
    },
    "text-only 100%": {
        "role": "llm",
        "splits": {"heldout": {"n": 12, "accuracy": 1.0, "mean_p_answer": 0.9996}},
    },
    "a_mllm": {
        "role": "mllm",
        "splits": {"movies": {"n": 60, "accuracy": 0.0, "mean_p_answer": 0.0}},
    },
}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[QuestionRecord]:
    out = tmp_path_factory.mktemp("tw")
    generate(out, 0, 20, 15, 15, 4, 16, 1)
    return load_questions([out / f"{s}.csv" for s in SPLITS])


def _body_rows(tex: str) -> list[list[str]]:
    """Data rows of a booktabs table as cells (between \\midrule and \\bottomrule)."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule")[0]
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if line.endswith("\\\\"):
            rows.append([c.strip() for c in line[:-2].split(" & ")])
    return rows


def test_dataset_stats_rows_match_records(records: list[QuestionRecord]) -> None:
    rows = dataset_stats_rows(records)
    assert [r["label"] for r in rows] == ["Known", "Movies", "OK-VQA", "Held-out", "Total"]
    for row in rows[:-1]:
        recs = [r for r in records if r.split == row["split"]]
        assert row["total"] == len(recs) > 0
        assert row["single"] == sum(r.constraint_type == "single" for r in recs)
        assert row["multi"] == sum(r.constraint_type == "multi" for r in recs)
        assert row["single"] + row["multi"] == row["total"]
        assert row["entities"] == len({r.entity_id for r in recs})
    total = rows[-1]
    for key in ("single", "multi", "total"):
        assert total[key] == sum(r[key] for r in rows[:-1])
    assert total["total"] == len(records)
    assert total["entities"] == len({r.entity_id for r in records})


def test_render_dataset_stats(records: list[QuestionRecord]) -> None:
    tex = render_dataset_stats(records)
    assert tex == render_dataset_stats(records)
    assert "\\label{tab:dataset_stats}" in tex and "\\toprule" in tex
    rows = _body_rows(tex)
    expected = dataset_stats_rows(records)
    assert [r[0] for r in rows] == [e["label"] for e in expected]
    for cells, e in zip(rows, expected, strict=True):
        assert cells[1:] == [str(e[k]) for k in ("single", "multi", "total", "entities")]


def test_render_dataset_stats_keeps_empty_splits(records: list[QuestionRecord]) -> None:
    only_known = [r for r in records if r.split == "known"]
    rows = _body_rows(render_dataset_stats(only_known))
    assert rows[2] == ["OK-VQA", "0", "0", "0", "0"]
    assert rows[-1][3] == str(len(only_known))


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% #1 $x {y} ~^\\") == (
        r"a\_b \& 50\% \#1 \$x \{y\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )


def test_render_model_accuracy() -> None:
    tex = render_model_accuracy(ACC)
    assert tex == render_model_accuracy(dict(reversed(list(ACC.items()))))
    assert "\\label{tab:model_accuracy}" in tex
    assert "llava\\_1.5 \\& friends" in tex and "text-only 100\\%" in tex
    assert "llava_1.5" not in tex and " 100%" not in tex
    header = next(line for line in tex.splitlines() if "multicolumn" in line)
    assert [h.split("{")[-1].rstrip("} \\") for h in header.split("&")[2:]] == [
        "Known",
        "Movies",
        "OK-VQA",
        "Held-out",
    ]
    rows = _body_rows(tex)
    # MLLMs first (by name), then LLMs; 2 label columns + 4 splits x (acc, p).
    assert [r[:2] for r in rows] == [
        ["a\\_mllm", "MLLM"],
        ["llava\\_1.5 \\& friends", "MLLM"],
        ["text-only 100\\%", "LLM"],
    ]
    assert rows[0][2:] == ["--", "--", "0.0", "0.000", "--", "--", "--", "--"]
    assert rows[1][2:] == ["50.0", "0.123", "--", "--", "33.3", "0.500", "--", "--"]
    assert rows[2][2:] == ["--"] * 6 + ["100.0", "1.000"]


def _with_vqa() -> dict:
    acc = copy.deepcopy(ACC)
    acc["llava_1.5 & friends"]["splits"]["okvqa"]["vqa_accuracy"] = 0.4567
    return acc


def test_render_model_accuracy_adds_vqa_accuracy_where_measured() -> None:
    """OK-VQA with its annotators' answers (paper world) gets a third column; others do not."""
    tex = render_model_accuracy(_with_vqa())
    assert "\\multicolumn{3}{c}{OK-VQA}" in tex and "\\multicolumn{2}{c}{Known}" in tex
    assert "\\cmidrule(lr){7-9}" in tex and "\\cmidrule(lr){10-11}" in tex
    rows = _body_rows(tex)
    assert rows[1][2:] == ["50.0", "0.123", "--", "--", "33.3", "0.500", "45.7", "--", "--"]
    assert rows[0][6:9] == ["--", "--", "--"]  # not evaluated on OK-VQA at all
    assert "& VQA" not in render_model_accuracy(ACC)  # the toy world's table is unchanged


def test_render_model_accuracy_rejects_bad_role() -> None:
    with pytest.raises(ValueError, match="'m'"):
        render_model_accuracy({"m": {"role": "vlm", "splits": {}}})


def test_write_table_is_atomic_and_newline_terminated(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.tex"
    write_table(path, "x\n\n\n")
    assert path.read_bytes() == b"x\n"
    assert [p.name for p in path.parent.iterdir()] == ["t.tex"]


def test_save_figure_is_byte_identical(tmp_path: Path) -> None:
    def build() -> Figure:
        fig = Figure(figsize=(2, 1.5))
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [1, 3, 2], label="a_b")
        ax.set_title("layer 3")
        ax.legend()
        return fig

    first = save_figure(build(), tmp_path / "a" / "fig")
    second = save_figure(build(), tmp_path / "b" / "fig")
    assert [p.name for p in first] == ["fig.pdf", "fig.png"]
    for p, q in zip(first, second, strict=True):
        assert p.read_bytes() == q.read_bytes()
    assert b"CreationDate" not in first[0].read_bytes()
    assert matplotlib.__version__.encode() not in first[0].read_bytes()
    assert b"Software" not in first[1].read_bytes()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_compile_tables(records: list[QuestionRecord], tmp_path: Path) -> None:
    write_table(tmp_path / "dataset stats.tex", render_dataset_stats(records))
    write_table(tmp_path / "model_accuracy.tex", render_model_accuracy(ACC))
    write_table(tmp_path / "with_vqa.tex", render_model_accuracy(_with_vqa()))
    pdf = compile_tables(
        [tmp_path / n for n in ("dataset stats.tex", "model_accuracy.tex", "with_vqa.tex")],
        tmp_path / "build",
    )
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_compile_tables_reports_log_tail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tex"
    bad.write_text("\\begin{tabular}{l}\\undefinedmacro\\end{tabular}\n")
    with pytest.raises(TableCompileError, match="undefinedmacro"):
        compile_tables([bad], tmp_path / "build")
