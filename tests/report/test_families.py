"""The supported-families tables: generated from the measured record (reference/families.json),
the same in the README and docs/families.md, and saying for each family what the tests hold."""

from __future__ import annotations

from pathlib import Path

from support.families import FAMILIES

from mmtrace.io import read_json
from mmtrace.report.families import FAMILIES_BEGIN, FAMILIES_END, markdown, splice_families

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference" / "families.json"


def record() -> dict:
    row = {"label": "A", "class": "AForCausalLM", "max_abs_diff": 1.23e-7, "max_effect": 0.0561}
    return {
        "tolerance": 1e-5,
        "kinds": ["mlp"],
        "windows": [1, 3],
        "corruptions": ["replace"],
        "environment": {"torch": "9", "transformers": "8"},
        "families": [
            {**row, "path": "engine", "reason": None},
            {**row, "label": "B", "path": "reference", "reason": "B: not causal | x"},
            {**row, "label": "C", "path": "refused", "reason": "C: cross-attention"},
        ],
    }


def test_each_path_reads_as_it_was_measured():
    lines = markdown(record()).splitlines()
    assert lines[2] == "| A | `AForCausalLM` | exact, engine | 1.2e-07 (0.056) |"
    assert (
        lines[3]
        == "| B | `AForCausalLM` | exact, reference (B: not causal \\| x) | 1.2e-07 (0.056) |"
    )
    assert lines[4] == "| C | `AForCausalLM` | refused: C: cross-attention | - |"
    assert "tolerance 1e-05, torch 9, transformers 8." in lines[-1]


def test_readme_and_docs_tables_are_the_committed_record():
    """Regenerate with `make claims-readme` (or measure again: `make reference-families`)."""
    reference = read_json(REFERENCE)
    for page in (ROOT / "README.md", ROOT / "docs" / "families.md"):
        text = page.read_text()
        assert FAMILIES_BEGIN in text and FAMILIES_END in text, page
        assert splice_families(text, reference) == text, page


def test_the_record_covers_every_tested_family_on_the_path_its_tests_assert():
    """A family the tests trace with the engine was measured on the engine, within tolerance,
    on effects >= 100x it; one they send to the reference, on the reference; one they refuse,
    refused."""
    reference = read_json(REFERENCE)
    rows = {r["family"]: r for r in reference["families"]}
    assert set(rows) == set(FAMILIES)
    for name, family in FAMILIES.items():
        row = rows[name]
        assert row["path"] == family.status, name
        if row["path"] != "refused":
            assert row["max_abs_diff"] <= reference["tolerance"], name
            assert row["max_effect"] >= 100 * reference["tolerance"], name
