"""The validation table: Markdown for the README from the same rows as the LaTeX table; the
committed README's block is exactly what the committed reference renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmtrace.io import read_json
from mmtrace.report.claims import (
    VALIDATION_BEGIN,
    VALIDATION_END,
    reference_pages,
    splice_validation,
)
from mmtrace.report.validation import markdown, markdown_compact, rows

ROOT = Path(__file__).resolve().parents[2]


def summary() -> dict:
    check = {"method": "MultEdit", "n": 8, "threshold": 0.9, "diagnostic": False}
    return {
        "false_positive_rate": 0.5,
        "models": {
            "pos": {
                "control": "positive",
                "checks": [
                    {**check, "rule": "efficacy", "value": 0.95, "holds": True},
                    {**check, "rule": "a | b", "value": 0.5, "holds": False},
                    {**check, "rule": "efficacy", "value": 0.1, "holds": False, "diagnostic": True},
                ],
            },
            "neg": {
                "control": "negative",
                "checks": [{**check, "rule": "efficacy", "value": 0.95, "holds": True}],
            },
        },
    }


def test_markdown_has_the_latex_rows_with_the_control_on_each():
    s = summary()
    lines = markdown(s).splitlines()
    body = [line for line in lines[2:] if line.startswith("| ")]
    assert len(body) == len(rows(s)) == 4
    assert body[0] == "| `pos` (positive) | MultEdit | efficacy | 8 | 0.95 | 0.9 | pass |"
    assert "a \\| b" in body[1] and body[1].endswith("| **FAIL** |")
    assert body[2].endswith("| diagnostic: misses it |")
    assert (
        body[3]
        == "| `neg` (negative) | MultEdit | efficacy | 8 | 0.95 | 0.9 | fires (false positive) |"
    )
    assert lines[-1].startswith("Negative controls' false-positive rate: 0.50 (of")


def test_the_readme_table_has_one_row_per_control_naming_what_went_wrong():
    s = summary()
    s["models"]["pos"].update(passed=1, total=2, failed=["MultEdit: a | b"], fired=[])
    s["models"]["pos"]["ground_truth"] = "compiled"
    s["models"]["neg"].update(passed=0, total=1, failed=["MultEdit: efficacy"])
    s["models"]["neg"]["fired"] = ["MultEdit: efficacy"]
    s["models"]["empty"] = {"control": "sanity", "checks": [], "total": 0}
    body = [line for line in markdown_compact(s).splitlines() if line.startswith("| `")]
    assert body == [
        "| `pos` | positive (compiled) | 1/2 | MultEdit: a \\| b | **FAIL** |",
        "| `neg` | negative | 0/1 | MultEdit: efficacy (fires) | **FAIL** |",
        "| `empty` | sanity | 0/0 | - | no data |",
    ]
    assert "false-positive rate: 0.50" in markdown_compact(s)


def test_splice_needs_the_markers():
    readme = f"a\n{VALIDATION_BEGIN}\nOLD\n{VALIDATION_END}\nb\n"
    new = splice_validation(readme, summary())
    assert "OLD" not in new and new.endswith(f"{VALIDATION_END}\nb\n") and "`neg`" in new
    with pytest.raises(ValueError, match="validation markers"):
        splice_validation("no markers", summary())


def test_readme_validation_table_is_the_committed_reference():
    """README and reference/validation.json agree (regenerate with `make claims-readme`)."""
    reference = read_json(ROOT / "reference" / "validation.json")
    readme = (ROOT / "README.md").read_text()
    assert splice_validation(readme, reference) == readme
    path = ROOT / "reference" / "validation.json"
    pages = reference_pages(None, path)
    assert pages == {path.with_suffix(".md"): path.with_suffix(".md").read_text()}
    assert reference["models"]["toy-llava-compiled"]["control"] == "positive"
