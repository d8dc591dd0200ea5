"""The supported-families table of the README and docs/families.md, generated from the measured
record (reference/families.json, written by `benchmarks/families.py`), so that what the docs say
about a family is what was measured on it."""

from __future__ import annotations

from mmtrace.report.runtime import splice_block
from mmtrace.report.tables import markdown_row

FAMILIES_BEGIN = (
    "<!-- families:begin (generated from reference/families.json by `make claims-readme`) -->"
)
FAMILIES_END = "<!-- families:end -->"


def _tracing(row: dict) -> str:
    if row["path"] == "refused":
        return f"refused: {row['reason']}"
    if row["path"] == "engine":
        return "exact, engine"
    return f"exact, reference ({row['reason']})" if row.get("reason") else "exact, reference"


def _numbers(row: dict) -> str:
    if row["path"] == "refused":
        return "-"
    return f"{row['max_abs_diff']:.2g} ({row['max_effect']:.2g})"


def markdown(record: dict) -> str:
    """One row per family: its transformers class, how `trace` computes it, and the largest
    |trace - exact reference| with the largest |IE| among the cells compared."""
    lines = [
        "| family | transformers class | tracing | max \\|trace - reference\\| (max \\|IE\\|) |",
        "|---|---|---|---|",
    ]
    for row in record["families"]:
        cells = [row["label"], f"`{row['class']}`", _tracing(row), _numbers(row)]
        lines.append(markdown_row(cells))
    env = record.get("environment", {})
    lines += [
        "",
        f"Measured by `benchmarks/families.py` on tiny random checkpoints (kinds "
        f"{', '.join(record['kinds'])}; windows {', '.join(map(str, record['windows']))}; "
        f"corruptions {', '.join(record['corruptions'])}), tolerance {record['tolerance']:g}, "
        f"torch {env.get('torch', '?')}, transformers {env.get('transformers', '?')}.",
    ]
    return "\n".join(lines) + "\n"


def splice_families(text: str, record: dict) -> str:
    """`text` (the README or docs/families.md) with its families block regenerated."""
    return splice_block(text, FAMILIES_BEGIN, FAMILIES_END, markdown(record), "families")
