"""LaTeX tables for the paper (booktabs), rendered from jinja2 templates.

Numbers are formatted here with fixed precision and rows are ordered canonically, so the same
inputs always give the same bytes; the lead's workflow diffs these files across reruns.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from mmtrace.config.analyses import setting_label
from mmtrace.dataset import QuestionRecord
from mmtrace.io import write_text
from mmtrace.report.style import SPLIT_ORDER, split_label

TEMPLATE_DIR = Path(__file__).parent / "templates"
MISSING = "--"
ROLE_ORDER = {"mllm": 0, "llm": 1}
ROLE_LABELS = {"mllm": "MLLM", "llm": "LLM"}

DATASET_STATS_CAPTION = (
    "Questions per split and constraint type. Single-constraint questions name the entity only "
    "through the image (a visual constraint); multi-constraint questions add a textual "
    "constraint. \\#Entities counts distinct entities."
)
MODEL_ACCURACY_CAPTION = (
    "Accuracy (\\%) and mean probability of the ground-truth answer, $p$(ans.), per split. "
    "MLLM: multi-modal model; LLM: language-only model. -- marks a split not evaluated."
)

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))


class TableCompileError(RuntimeError):
    """pdflatex failed; the message carries the tail of its log."""


def latex_escape(value: Any) -> str:
    """Escape text for LaTeX in one pass (so the backslashes we insert are not re-escaped)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(value))


def markdown_row(cells: Iterable[Any]) -> str:
    """One Markdown table row: pipes escaped, newlines folded, so a cell cannot break the table
    (the README's claims and validation tables)."""
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _env() -> jinja2.Environment:
    # LaTeX-safe delimiters: {% %} and {{ }} collide with TeX grouping and comments.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["latex"] = latex_escape
    return env


def render_template(template: str, **context: Any) -> str:
    """Render one of the jinja2 LaTeX templates under `templates/`."""
    return _env().get_template(template).render(**context)


def _ordered_splits(splits: Iterable[str]) -> list[str]:
    """Paper order for the known splits, then any others alphabetically."""
    present = set(splits)
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def dataset_stats_rows(records: list[QuestionRecord]) -> list[dict]:
    """Per-split counts (all four paper splits, even if empty) plus a final total row.

    Each row: split, label, single, multi, total, entities. The total row's `entities` counts
    distinct entity ids over all splits, not the sum of the per-split counts.
    """
    rows = []
    for split in _ordered_splits([*SPLIT_ORDER, *(r.split for r in records)]):
        recs = [r for r in records if r.split == split]
        single = sum(r.constraint_type == "single" for r in recs)
        rows.append(
            {
                "split": split,
                "label": split_label(split),
                "single": single,
                "multi": len(recs) - single,
                "total": len(recs),
                "entities": len({r.entity_id for r in recs}),
            }
        )
    rows.append(
        {
            "split": "total",
            "label": "Total",
            "single": sum(r["single"] for r in rows),
            "multi": sum(r["multi"] for r in rows),
            "total": len(records),
            "entities": len({r.entity_id for r in records}),
        }
    )
    return rows


def render_dataset_stats(
    records: list[QuestionRecord], caption: str = DATASET_STATS_CAPTION
) -> str:
    """Booktabs table of questions per split and constraint type (label tab:dataset_stats).

    `caption` is inserted verbatim (it is LaTeX), unlike the row labels, which are escaped.
    """
    return render_template(
        "dataset_stats.tex.j2", rows=dataset_stats_rows(records), caption=caption
    )


def _fmt(value: Any, scale: float, digits: int) -> str:
    if value is None:
        return MISSING
    x = float(value)
    if math.isnan(x) or math.isinf(x):
        return MISSING
    out = f"{x * scale:.{digits}f}"
    return out.lstrip("-") if float(out) == 0 else out  # no "-0.0" from tiny negatives


def render_model_accuracy(
    acc: Mapping[str, Mapping[str, Any]], caption: str = MODEL_ACCURACY_CAPTION
) -> str:
    """Booktabs table of accuracy (%, 1 decimal) and mean p(answer) (3 decimals) per model and
    split (label tab:model_accuracy).

    `acc` is the evaluation stage's JSON: {model: {"role": "mllm"|"llm", "splits": {split:
    {"n", "accuracy", "mean_p_answer"}}}}. Rows are ordered MLLMs first, then by name, so the
    output does not depend on dict order; a split a model was not evaluated on reads "--".
    """
    for name, entry in acc.items():
        if not isinstance(entry, Mapping) or "splits" not in entry:
            raise ValueError(f"model {name!r}: expected a mapping with a 'splits' entry")
        if entry.get("role") not in ROLE_ORDER:
            raise ValueError(
                f"model {name!r}: role {entry.get('role')!r} is not one of {sorted(ROLE_ORDER)}"
            )
    splits = _ordered_splits(s for entry in acc.values() for s in entry["splits"])
    # a split whose annotators' answers were available (OK-VQA, paper world) gets a third
    # column: the official VQA accuracy of the generated answers
    vqa = {
        s
        for entry in acc.values()
        for s, res in entry["splits"].items()
        if res.get("vqa_accuracy") is not None
    }
    columns, first = [], 3
    for s in splits:
        width = 3 if s in vqa else 2
        columns.append({"name": s, "label": split_label(s), "first": first, "width": width})
        first += width
    rows = []
    for name in sorted(acc, key=lambda n: (ROLE_ORDER[acc[n]["role"]], n)):
        entry = acc[name]
        cells: list[str] = []
        for col in columns:
            res = entry["splits"].get(col["name"])
            if res is None:
                cells += [MISSING] * col["width"]
                continue
            cells += [_fmt(res.get("accuracy"), 100.0, 1), _fmt(res.get("mean_p_answer"), 1.0, 3)]
            if col["width"] == 3:
                cells.append(_fmt(res.get("vqa_accuracy"), 100.0, 1))
        rows.append({"name": name, "role": ROLE_LABELS[entry["role"]], "cells": cells})
    if vqa:
        caption += " VQA: the official VQA accuracy (\\%) of the model's generated answer."
    return render_template("model_accuracy.tex.j2", splits=columns, rows=rows, caption=caption)


EDITING_CAPTION = (
    "Model editing on the held-out edits: mean over edits, with the half-width of the 95\\% CI "
    "in parentheses. Efficacy and generalisation are $p$(target) on the edited question, on its "
    "paraphrases (same image) and on the edited question asked of other renderings of the same "
    "entity; specificity is accuracy on unrelated questions, on the edited question asked of "
    "other entities' images (neighbourhood) and on the other questions about the same image. "
    "Setting: each method's hyperparameter chosen on a separate tuning split (the rest from "
    "config). \\emph{unedited}: the model before editing, on the same questions."
)
EDIT_METHOD_LABELS = {
    "unedited": "unedited",
    "multedit": "MultEdit",
    "finetune": "FT",
    "finetune_constrained": "FT-L",
}
EDIT_SCENARIO_LABELS = {"error_correction": "error correction", "long_tail": "long tail"}


def _mean_ci_cell(stat: Mapping[str, Any] | None) -> str:
    if not stat or not stat.get("n"):
        return MISSING
    half = (stat["ci95"][1] - stat["ci95"][0]) / 2
    return f"{_fmt(stat['mean'], 1.0, 3)} ({_fmt(half, 1.0, 3)})"


def render_editing(summary: Mapping[str, Any], caption: str = EDITING_CAPTION) -> str:
    """Booktabs table of the editing summary (label tab:editing): one row per model, scenario
    and method (the unedited model first), metrics as mean (CI half-width)."""
    metrics = (
        "efficacy",
        "generalisation",
        "generalisation_renderings",
        "specificity",
        "specificity_neighbourhood",
        "specificity_same_image",
    )
    rows = []
    for model in sorted(summary):
        for scenario in ("error_correction", "long_tail"):
            e = summary[model]["scenarios"].get(scenario)
            if e is None:
                continue
            for i, method in enumerate(EDIT_METHOD_LABELS):
                if method not in e:
                    continue
                stats = e[method]
                rows.append(
                    {
                        "rule": bool(rows) and i == 0,
                        "model": model,
                        "scenario": EDIT_SCENARIO_LABELS[scenario],
                        "method": EDIT_METHOD_LABELS[method],
                        "setting": latex_escape(setting_label(e.get("settings", {}).get(method)))
                        if method != "unedited"
                        else "",
                        "n": e["n"],
                        "cells": [_mean_ci_cell(stats.get(m)) for m in metrics],
                    }
                )
    return render_template("editing.tex.j2", rows=rows, caption=caption)


def write_table(path: str | Path, tex: str) -> None:
    """Write a table atomically with exactly one trailing newline."""
    write_text(path, tex.rstrip("\n") + "\n")


_DOCUMENT = r"""\documentclass{article}
\usepackage[utf8]{inputenc}
\usepackage{booktabs}
\usepackage{longtable}
\pagestyle{empty}
\begin{document}
%s
\end{document}
"""


def compile_tables(paths: Iterable[str | Path], workdir: str | Path) -> Path:
    """Compile table files into `workdir`/tables.pdf to prove they are valid LaTeX.

    Inputs are copied under safe names first, since \\input chokes on spaces and some
    characters in paths. Raises TableCompileError with the log tail if pdflatex fails.
    """
    exe = shutil.which("pdflatex")
    if exe is None:
        raise TableCompileError("pdflatex not found on PATH (install texlive-latex-base)")
    workdir = Path(workdir)
    (workdir / "inputs").mkdir(parents=True, exist_ok=True)
    inputs = []
    for i, src in enumerate(paths):
        name = f"{i:02d}-{re.sub(r'[^A-Za-z0-9-]', '-', Path(src).stem)}.tex"
        shutil.copyfile(src, workdir / "inputs" / name)
        inputs.append(f"\\input{{inputs/{name}}}")
    if not inputs:
        raise ValueError("compile_tables: no table files given")
    write_text(workdir / "tables.tex", _DOCUMENT % "\n\\clearpage\n".join(inputs))
    pdf = workdir / "tables.pdf"
    pdf.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "tables.tex"],
            cwd=workdir,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        raise TableCompileError(f"pdflatex timed out after {exc.timeout} s in {workdir}") from exc
    if proc.returncode != 0 or not pdf.exists():
        log_file = workdir / "tables.log"
        log = log_file.read_text(errors="replace") if log_file.exists() else proc.stdout
        tail = "\n".join(log.splitlines()[-40:])
        raise TableCompileError(
            f"pdflatex failed (exit {proc.returncode}) on {workdir / 'tables.tex'}; "
            f"log tail:\n{tail}"
        )
    return pdf
