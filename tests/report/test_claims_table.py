"""The claims table: LaTeX that compiles and Markdown for the README, from the same rows; the
committed README's table is exactly the one the committed reference renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmtrace.config import Claims
from mmtrace.io import read_json
from mmtrace.report.claims import (
    README_BEGIN,
    README_END,
    ROBUSTNESS_BEGIN,
    ROBUSTNESS_END,
    markdown,
    reference_pages,
    splice_readme,
    splice_robustness,
    table_claims,
    update_readme,
)
from mmtrace.report.tables import compile_tables, write_table
from mmtrace.verdicts.claims import decide
from mmtrace.verdicts.evidence import Evidence

ROOT = Path(__file__).resolve().parents[2]


def claims() -> dict:
    ev = Evidence(
        {"toy-llava": "mllm", "toy_llm": "llm"},
        validation={
            "models": {
                "ctrl": {"control": "negative", "fired": ["tracing: site declared"], "total": 3}
            }
        },
    )
    return {"rows": [r.as_dict() for r in decide(ev, Claims())]}


def test_markdown_has_one_line_per_row_and_escapes_pipes():
    c = claims()
    c["rows"][0]["reason"] = "a | b"
    lines = markdown(c).splitlines()
    assert len(lines) == 2 + len(c["rows"]) + 2  # header, rows, a blank line, the legend
    assert "a \\| b" in lines[2]
    assert lines[-1].startswith("† the seeds")


def test_splice_replaces_only_the_marked_block():
    readme = f"intro\n{README_BEGIN}\nold table\n{README_END}\noutro\n"
    new = splice_readme(readme, claims())
    assert new.startswith("intro\n") and new.endswith(f"{README_END}\noutro\n")
    assert "old table" not in new and "| ctrl |" in new
    with pytest.raises(ValueError, match="claims markers"):
        splice_readme("no markers", claims())


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_claims_table_compiles(tmp_path):
    c = claims()
    c["rows"][0]["reason"] = "50% of {l1,l2} & p_holm < 0.05 #1 ~"
    write_table(tmp_path / "claims.tex", table_claims(c))
    assert compile_tables([tmp_path / "claims.tex"], tmp_path / "build").exists()


def test_readme_table_is_the_committed_reference():
    """README and reference/toy.json agree (regenerate with `make claims-readme`)."""
    reference = ROOT / "reference" / "toy.json"
    readme = (ROOT / "README.md").read_text()
    assert splice_readme(readme, read_json(reference)) == readme
    rows = read_json(reference)["rows"]
    assert rows and all(r["verdict"] and r["rule"] and r["reason"] for r in rows)


def test_robustness_block_is_spliced_from_the_pooled_verdicts(tmp_path):
    pooled = {
        "seeds": [1, 2],
        "rows": [
            {
                "claim": "F1",
                "model": "toy-llava",
                "verdicts": {"1": "supported", "2": "not supported"},
                "pooled": "unstable",
                "reasons": {},
            }
        ],
    }
    readme = (
        f"a\n{README_BEGIN}\nOLD\n{README_END}\nb\n{ROBUSTNESS_BEGIN}\nOLD\n{ROBUSTNESS_END}\nc\n"
    )
    new = splice_robustness(readme, pooled)
    assert "Seeds 1, 2: 0 of 1 verdicts are the same on every seed; 1 are `unstable`: F1 " in new
    assert new.endswith(f"{ROBUSTNESS_END}\nc\n") and "\nOLD\n" in new  # claims block kept
    path, claims_file, pooled_file = tmp_path / "R.md", tmp_path / "c.json", tmp_path / "p.json"
    path.write_text(readme)
    claims_file.write_text(__import__("json").dumps(claims()))
    pooled_file.write_text(__import__("json").dumps(pooled))
    assert update_readme(path, claims_file, pooled_file)
    text = path.read_text()
    assert "`unstable`: F1 (toy-llava)" in text and "OLD" not in text
    # the full table the README summarises, beside its source
    page = (tmp_path / "p.md").read_text()
    assert "| F1 | toy-llava | supported | not supported | **unstable** |" in page


def test_readme_multi_seed_table_is_the_committed_robustness_reference():
    """README and reference/robustness.json agree (regenerate with `make claims-readme`)."""
    reference = ROOT / "reference" / "robustness.json"
    readme = (ROOT / "README.md").read_text()
    assert splice_robustness(readme, read_json(reference)) == readme
    pages = reference_pages(reference, None)
    assert pages == {reference.with_suffix(".md"): reference.with_suffix(".md").read_text()}
    pooled = read_json(reference)
    assert len(pooled["seeds"]) >= 3 and pooled["rows"]


def test_unstable_and_fragile_verdicts_are_marked_with_why():
    """A row the seeds disagree on carries †, a fragile row ‡, in the Markdown and the LaTeX
    table, with the seeds' verdicts and the near-threshold comparison in the reason; a row
    that is neither carries no mark."""
    c = claims()
    c["rows"][0]["seeds"] = {"1234": "supported", "1235": "not supported"}
    c["rows"][1]["fragile"] = ["known/mlp/w1 l0 Holm p: 0.049 vs 0.05 (p_value)"]
    c["rows"][2]["seeds"] = {"1234": "supported", "1235": "supported"}
    lines = markdown(c).splitlines()
    assert "**" + c["rows"][0]["verdict"] + "**†" in lines[2]
    assert "seeds: 1234 supported, 1235 not supported" in lines[2]
    assert "**" + c["rows"][1]["verdict"] + "**‡" in lines[3]
    assert "fragile: known/mlp/w1 l0 Holm p" in lines[3]
    assert "†" not in lines[4] and "‡" not in lines[4]
    assert "(1 of" in lines[-1] and "(1 rows)" in lines[-1]
    tex = table_claims(c)
    assert "1 of" in tex and "fragile" in tex
