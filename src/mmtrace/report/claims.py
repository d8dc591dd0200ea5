"""The claims table (results/claims.json): LaTeX for paper_tables/ and Markdown for the README,
both rendered from the same rows so they cannot disagree."""

from __future__ import annotations

from pathlib import Path

from mmtrace.io import read_json, write_text
from mmtrace.report.runtime import splice_block, splice_runtime
from mmtrace.report.tables import markdown_row, render_template
from mmtrace.report.validation import markdown as validation_markdown
from mmtrace.report.validation import markdown_compact as validation_compact
from mmtrace.verdicts.claims import seed_unstable
from mmtrace.verdicts.robustness import markdown as robustness_markdown
from mmtrace.verdicts.robustness import summary_markdown as robustness_summary

CAPTION = (
    "Does the paper hold? Each claim decided per model by the rule in its row, fixed in config "
    "(`claims`) before the run. Verdicts: supported, not supported, or inconclusive where the "
    "data cannot decide (too few traced questions or errors). Paper numbers marked secondary "
    "are unverified readings."
)

README_BEGIN = "<!-- claims:begin (generated from reference/toy.json by `make claims-readme`) -->"
README_END = "<!-- claims:end -->"
ROBUSTNESS_BEGIN = (
    "<!-- robustness:begin (generated from reference/robustness.json by `make claims-readme`) -->"
)
ROBUSTNESS_END = "<!-- robustness:end -->"
VALIDATION_BEGIN = (
    "<!-- validation:begin (generated from reference/validation.json by `make claims-readme`) -->"
)
VALIDATION_END = "<!-- validation:end -->"


UNSTABLE_MARK, FRAGILE_MARK = "†", "‡"


def _marks(row: dict) -> str:
    """† where the seeds of the multi-seed run disagree, ‡ where the verdict is fragile."""
    return (UNSTABLE_MARK if seed_unstable(row) else "") + (
        FRAGILE_MARK if row.get("fragile") else ""
    )


def _full_reason(row: dict) -> str:
    """The reason, then why the verdict is fragile and what the seeds say, where they apply."""
    out = row["reason"]
    if row.get("fragile"):
        out += "; fragile: " + "; ".join(row["fragile"])
    if seed_unstable(row):
        out += "; seeds: " + ", ".join(f"{s} {v}" for s, v in sorted(row["seeds"].items()))
    return out


def legend(claims: dict) -> str:
    """What the marks mean, with how many rows carry each."""
    rows = claims["rows"]
    unstable = sum(seed_unstable(r) for r in rows)
    fragile = sum(bool(r.get("fragile")) for r in rows)
    seeds = sorted({s for r in rows for s in r.get("seeds", {})})
    return (
        f"{UNSTABLE_MARK} the seeds of the committed multi-seed run "
        f"({', '.join(seeds) or 'none recorded'}) disagree on the verdict ({unstable} of "
        f"{len(rows)} rows); {FRAGILE_MARK} fragile: decided within a declared margin of a "
        f"threshold (config claims.margins), so rounding on another CPU could flip it "
        f"({fragile} rows)."
    )


def table_claims(claims: dict) -> str:
    rows, previous = [], None
    for row in claims["rows"]:
        rows.append(
            {
                **row,
                "rule_break": previous is not None and row["claim"] != previous,
                "verdict": row["verdict"] + _marks(row),
                "reason": _full_reason(row),
            }
        )
        previous = row["claim"]
    return render_template("claims.tex.j2", rows=rows, caption=f"{CAPTION} {legend(claims)}")


def markdown(claims: dict) -> str:
    """The README's claims table (every row: claim, model, verdict with its marks, rule, value,
    reason), then the marks' legend."""
    lines = [
        "| claim | model | verdict | decision rule | value | reason |",
        "|---|---|---|---|---|---|",
    ]
    for r in claims["rows"]:
        verdict = f"**{r['verdict']}**{_marks(r)}"
        cells = [r["claim"], r["model"], verdict, r["rule"], r["value"], _full_reason(r)]
        lines.append(markdown_row(cells))
    return "\n".join(lines) + "\n\n" + legend(claims) + "\n"


_splice = splice_block


def splice_readme(readme: str, claims: dict) -> str:
    """The README with the text between its claims markers replaced by `markdown(claims)`."""
    return _splice(readme, README_BEGIN, README_END, markdown(claims), "claims")


def splice_robustness(readme: str, pooled: dict) -> str:
    """The README with the text between its robustness markers replaced by the summary of the
    pooled verdicts of `snakemake robustness` (`mmtrace.verdicts.robustness.summary_markdown`)."""
    return _splice(
        readme, ROBUSTNESS_BEGIN, ROBUSTNESS_END, robustness_summary(pooled), "robustness"
    )


def splice_validation(readme: str, summary: dict) -> str:
    """The README with the text between its validation markers replaced by the method
    validation of a run (`results/validation/summary.json`), one row per control."""
    return _splice(
        readme, VALIDATION_BEGIN, VALIDATION_END, validation_compact(summary), "validation"
    )


PAGE_HEAD = "<!-- generated from {source} by `make claims-readme`: do not edit -->\n\n"


def reference_pages(robustness: Path | None, validation: Path | None) -> dict[Path, str]:
    """The full tables the README's blocks summarise, each beside its source: every check of
    the validation (reference/validation.md) and every seed's verdict (reference/robustness.md)."""
    out = {}
    if validation is not None and validation.is_file():
        out[validation.with_suffix(".md")] = (
            PAGE_HEAD.format(source=validation.name)
            + "# Method validation: every check\n\n"
            + validation_markdown(read_json(validation))
        )
    if robustness is not None and robustness.is_file():
        out[robustness.with_suffix(".md")] = (
            PAGE_HEAD.format(source=robustness.name)
            + "# Verdicts across seeds\n\n"
            + robustness_markdown(read_json(robustness))
        )
    return out


CONTROLS_BEGIN = (
    "<!-- controls:begin (generated from reference/claims_on_controls.json by "
    "`make claims-readme`) -->"
)
CONTROLS_END = "<!-- controls:end -->"


def splice_controls(readme: str, result: dict) -> str:
    """The README with the claim rules' table on the controls (`verdicts.on_controls`)."""
    from mmtrace.verdicts.on_controls import markdown as controls_markdown

    return _splice(readme, CONTROLS_BEGIN, CONTROLS_END, controls_markdown(result), "controls")


def update_readme(
    readme: str | Path,
    claims: str | Path,
    robustness: str | Path | None = None,
    validation: str | Path | None = None,
    run_time: str | Path | None = None,
    controls: str | Path | None = None,
    families: str | Path | None = None,
    pin_cost: str | Path | None = None,
) -> bool:
    """Rewrite the README's claims table from a claims file, its multi-seed table from a
    pooled robustness file, its validation table from a validation summary and its run-time
    sentence from a timed run (benchmarks/run_time.py), its families table (and
    docs/families.md's) from benchmarks/families.py's record, docs/reproducibility.md's pin
    cost from benchmarks/pin_cost.py's, each where given and present
    (`make claims-readme`), and the full tables those blocks summarise (`reference_pages`);
    True if the README changed."""
    readme = Path(readme)
    for page, text in reference_pages(
        None if robustness is None else Path(robustness),
        None if validation is None else Path(validation),
    ).items():
        if not page.is_file() or page.read_text() != text:
            write_text(page, text)
    old = readme.read_text()
    new = splice_readme(old, read_json(claims))
    if robustness is not None and Path(robustness).is_file():
        new = splice_robustness(new, read_json(robustness))
    if validation is not None and Path(validation).is_file():
        new = splice_validation(new, read_json(validation))
    if run_time is not None and Path(run_time).is_file():
        new = splice_runtime(new, read_json(run_time))
    if controls is not None and Path(controls).is_file() and CONTROLS_BEGIN in new:
        new = splice_controls(new, read_json(controls))
    if pin_cost is not None and Path(pin_cost).is_file():
        from mmtrace.report.runtime import splice_pin_cost

        page = readme.parent / "docs" / "reproducibility.md"
        text = page.read_text()
        if splice_pin_cost(text, read_json(pin_cost)) != text:
            write_text(page, splice_pin_cost(text, read_json(pin_cost)))
    if families is not None and Path(families).is_file():
        from mmtrace.report.families import splice_families

        record = read_json(families)
        new = splice_families(new, record)
        page = readme.parent / "docs" / "families.md"
        if page.is_file():
            text = page.read_text()
            if splice_families(text, record) != text:
                write_text(page, splice_families(text, record))
    if new != old:
        write_text(readme, new)
    return new != old
