"""The claims table (results/claims.json): LaTeX for paper_tables/ and Markdown for the README,
both rendered from the same rows so they cannot disagree."""

from __future__ import annotations

from pathlib import Path

from mmtrace.io import read_json, write_text
from mmtrace.report.tables import render_template

CAPTION = (
    "Does the paper hold? Each claim decided per model by the rule in its row, fixed in config "
    "(`claims`) before the run. Verdicts: supported, not supported, or inconclusive where the "
    "data cannot decide (too few traced questions or errors). Paper numbers marked secondary "
    "are unverified readings."
)

README_BEGIN = "<!-- claims:begin (generated from reference/toy.json by `make claims-readme`) -->"
README_END = "<!-- claims:end -->"


def table_claims(claims: dict) -> str:
    rows, previous = [], None
    for row in claims["rows"]:
        rows.append({**row, "rule_break": previous is not None and row["claim"] != previous})
        previous = row["claim"]
    return render_template("claims.tex.j2", rows=rows, caption=CAPTION)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(claims: dict) -> str:
    """The README's claims table (every row: claim, model, verdict, rule, value, reason)."""
    lines = [
        "| claim | model | verdict | decision rule | value | reason |",
        "|---|---|---|---|---|---|",
    ]
    for r in claims["rows"]:
        cells = [r["claim"], r["model"], f"**{r['verdict']}**", r["rule"], r["value"], r["reason"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def splice_readme(readme: str, claims: dict) -> str:
    """The README with the text between its claims markers replaced by `markdown(claims)`."""
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError(f"README lacks the claims markers {README_BEGIN!r} ... {README_END!r}")
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{markdown(claims)}{README_END}{tail}"


def update_readme(readme: str | Path, claims: str | Path) -> bool:
    """Rewrite the README's claims table from a claims file (`make claims-readme`); True if it
    changed."""
    readme = Path(readme)
    old = readme.read_text()
    new = splice_readme(old, read_json(claims))
    if new != old:
        write_text(readme, new)
    return new != old
