"""The README is a front page and the docs hang together: the README stays within its line budget
and states no hand-typed numbers outside its generated blocks; docs/index.md lists every page;
every relative link of the README and the docs reaches a file (and a heading, where it names one);
and the defaults documented in docs/configuration.md are those of config.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mmtrace.config import validate
from mmtrace.report.claims import (
    CONTROLS_BEGIN,
    CONTROLS_END,
    README_BEGIN,
    README_END,
    ROBUSTNESS_BEGIN,
    ROBUSTNESS_END,
    VALIDATION_BEGIN,
    VALIDATION_END,
)
from mmtrace.report.families import FAMILIES_BEGIN, FAMILIES_END
from mmtrace.report.runtime import RUNTIME_BEGIN, RUNTIME_END

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

GENERATED = (
    (README_BEGIN, README_END),
    (VALIDATION_BEGIN, VALIDATION_END),
    (ROBUSTNESS_BEGIN, ROBUSTNESS_END),
    (RUNTIME_BEGIN, RUNTIME_END),
    (CONTROLS_BEGIN, CONTROLS_END),
    (FAMILIES_BEGIN, FAMILIES_END),
)

# Numbers the README may state by hand: facts that do not change when the results are
# regenerated. Keep this short; a result belongs in a generated block or in results/.
ALLOWED_NUMBERS = {
    "2024": "the paper's venue, NeurIPS 2024",
    "3.11.5": "the lowest Python the lock allows (Makefile LOCK_PYTHON)",
}

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
NUMBER = re.compile(r"(?<![\w.\-/])\d+(?:[.,]\d+)*")


def strip_fences(text: str) -> str:
    """`text` without fenced code blocks."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)


def strip_code(text: str) -> str:
    """`text` without fenced code blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", strip_fences(text))


def strip_generated(text: str) -> str:
    """`text` without the generated blocks, markers included."""
    for begin, end in GENERATED:
        while begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + rest.split(end, 1)[1]
    return text


def hand_typed_numbers(text: str) -> list[str]:
    """The number tokens of a README's prose: generated blocks, code, HTML comments and link
    targets removed; a digit inside a word or name (F1, LLaVA-1.5, fig5_...) is no number."""
    prose = strip_code(strip_generated(text))
    prose = re.sub(r"<!--.*?-->", "", prose, flags=re.S)
    prose = re.sub(r"\]\([^)]*\)", "]", prose)
    return [n for n in NUMBER.findall(prose) if n not in ALLOWED_NUMBERS]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    for line in strip_fences(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            base = slug(m.group(1))
            name, i = base, 0
            while name in out:
                i += 1
                name = f"{base}-{i}"
            out.add(name)
    return out


def links(path: Path) -> list[str]:
    text = re.sub(r"<!--.*?-->", "", strip_code(path.read_text(encoding="utf-8")), flags=re.S)
    return LINK.findall(text)


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file whose file (or heading, for a .md target with an
    anchor) does not exist."""
    bad = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        missing_heading = anchor and dest.suffix == ".md" and anchor not in anchors(dest)
        if not dest.exists() or missing_heading:
            bad.append(target)
    return bad


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move detail to docs/"
    )


def test_readme_states_no_hand_typed_numbers():
    """Results, timings and counts go in a generated block (make claims-readme) or in docs/,
    never typed into the README, where the next run would leave them stale."""
    found = hand_typed_numbers(README.read_text(encoding="utf-8"))
    assert not found, f"hand-typed numbers in README.md outside its generated blocks: {found}"


def test_the_number_finder_finds_numbers_and_ignores_names_code_and_generated_blocks():
    text = (
        "toy-llava answers 95.7% of Known (n=420), F1 holds at layer 3; NeurIPS 2024.\n"
        "LLaVA-1.5 and Phi-2, `make test` in 87 s? no: `87` is code, fig5_x.png a name.\n"
        "```bash\nsnakemake --cores 2\n```\n[a link](figures/fig1_a.png)\n"
        f"{RUNTIME_BEGIN}\nTook 18 min.\n{RUNTIME_END}\n"
    )
    assert hand_typed_numbers(text) == ["95.7", "420", "3", "87"]


def test_docs_index_lists_every_page_and_every_listed_page_exists():
    index = DOCS / "index.md"
    listed = {
        (DOCS / t.partition("#")[0]).resolve()
        for t in links(index)
        if t.partition("#")[0].endswith(".md")
    }
    missing = [str(p.relative_to(ROOT)) for p in listed if not p.is_file()]
    assert not missing, f"docs/index.md links pages that do not exist: {missing}"
    unlisted = [p.name for p in doc_pages() if p != index and p.resolve() not in listed]
    assert not unlisted, f"docs pages not linked from docs/index.md: {unlisted}"
    readme_links = {(ROOT / t.partition("#")[0]).resolve() for t in links(README)}
    assert index.resolve() in readme_links, "README.md does not link docs/index.md"


@pytest.mark.parametrize("page", [README, *doc_pages()], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    bad = broken_links(page)
    assert not bad, f"{page.relative_to(ROOT)}: links to missing files or headings: {bad}"


def test_the_link_checker_catches_missing_files_and_headings(tmp_path):
    (tmp_path / "other.md").write_text("# A heading: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-heading-with-code) [gone](missing.md) [bad](other.md#nope)\n"
        "[web](https://example.org/x) [self](#top)\n# Top\n```\n[not](a-link.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md", "other.md#nope"]


def documented_defaults(text: str) -> list[tuple[str, str]]:
    """The (key, default) rows of the Markdown table whose header is `| key | default | ...`."""
    rows, in_table = [], False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[:2] == ["key", "default"]:
            in_table = True
        elif in_table and line.startswith("|") and not set(cells[0]) <= {"-", ":"}:
            rows.append((cells[0].strip("`"), cells[1].strip("`")))
        elif in_table and not line.startswith("|"):
            break
    return rows


def contradictions(rows: list[tuple[str, str]], config: dict) -> list[str]:
    """Each documented default that is not the config's value, or names no config key."""
    out = []
    for key, written in rows:
        value = config
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                out.append(f"{key}: no such key in config.yaml")
                break
            value = value[part]
        else:
            if yaml.safe_load(written) != value:
                out.append(f"{key}: documented {written}, config.yaml has {value!r}")
    return out


def validated_config() -> dict:
    return validate(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))


def test_documented_defaults_are_those_of_config_yaml():
    rows = documented_defaults((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert len(rows) >= 20, "docs/configuration.md lost its table of defaults"
    problems = contradictions(rows, validated_config())
    assert not problems, "docs/configuration.md disagrees with config.yaml:\n" + "\n".join(problems)


def test_a_contradicting_default_is_detected():
    table = (
        "| key | default | meaning |\n|---|---|---|\n"
        "| `tracing.min_drop` | `0.2` | wrong |\n| `tracing.windows` | `[1, 3]` | right |\n"
        "| `tracing.nope` | `1` | no such key |\n\nprose\n"
    )
    rows = documented_defaults(table)
    assert [k for k, _ in rows] == ["tracing.min_drop", "tracing.windows", "tracing.nope"]
    problems = contradictions(rows, validated_config())
    assert len(problems) == 2
    assert problems[0].startswith("tracing.min_drop: documented 0.2")
    assert problems[1] == "tracing.nope: no such key in config.yaml"
