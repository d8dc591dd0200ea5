"""The method-validation figure and table: each rule's statistic per control, against its
threshold (`results/validation/summary.json`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from mmtrace.report.style import apply_style, empty_figure, save_figure
from mmtrace.report.tables import markdown_row, render_template

CAPTION = (
    "Method validation. Each method run on the controls: the compiled LLaVA (positive: its "
    "route is known) must pass every rule; a LLaVA trained on the planted world (positive for "
    "the token-level rules only: its data fixes which visual tokens carry the entity, its route "
    "is learnt) must pass those; the negative controls (the compiled model with its route cut, "
    "a randomly initialised LLaVA) must fire none. Rules and thresholds are fixed in the config "
    "before the run. Diagnostic rows (MultEdit at other settings, config editing.variants) are "
    "reported against the same thresholds but count in no verdict."
)


def _verdict(control: str, holds: bool, diagnostic: bool = False, expected=None) -> str:
    """A check against what the control's construction implies (`expected`; older summaries
    have none: a positive expects every check to hold, a negative none)."""
    if diagnostic:
        return "diagnostic: " + ("meets it" if holds else "misses it")
    if expected is None:
        expected = control == "positive"
    if holds == expected:
        return "pass" if expected else "silent"
    return "FAIL" if expected else "fires (false positive)"


def _label(check: dict) -> str:
    tail = " (diagnostic)" if check.get("diagnostic") else ""
    return f"{check['method']}: {check['rule']}{tail}"


def rows(summary: dict) -> list[dict]:
    out, previous = [], None
    for model, entry in summary["models"].items():
        for c in entry["checks"]:
            value = "--" if c["value"] is None else f"{c['value']:.3g}"
            out.append(
                {
                    "model": model if model != previous else "",
                    "rule_break": previous is not None and model != previous,
                    "method": c["method"],
                    "rule": c["rule"],
                    "n": c["n"],
                    "value": value,
                    "threshold": f"{c['threshold']:.3g}",
                    "verdict": (
                        _verdict(
                            entry["control"],
                            c["holds"],
                            c.get("diagnostic", False),
                            c.get("expected"),
                        )
                        if c["n"]
                        else "no data"
                    ),
                }
            )
            previous = model
    return out


def render_table(summary: dict) -> str:
    return render_template("validation.tex.j2", rows=rows(summary), caption=CAPTION)


def markdown(summary: dict) -> str:
    """The README's validation table: the LaTeX table's rows (the control named on every row),
    then the negative controls' false-positive rate."""
    lines = [
        "| control | method | rule | n | statistic | threshold | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, entry in summary["models"].items():
        for row in rows({"models": {model: entry}}):
            cells = [
                f"`{model}` ({entry['control']})",
                row["method"],
                row["rule"],
                row["n"],
                row["value"],
                row["threshold"],
                row["verdict"] if row["verdict"] != "FAIL" else "**FAIL**",
            ]
            lines.append(markdown_row(cells))
    rate = summary.get("false_positive_rate")
    if rate is not None:
        lines += [
            "",
            f"Negative controls' false-positive rate: {rate:.2f} (of "
            f"{summary.get('negative_checks', 0)} checks whose mechanism they rule out).",
        ]
    sanity = summary.get("sanity_fired")
    if sanity is not None:
        fired = "; ".join(f"{m}: {', '.join(f)}" for m, f in sanity.items()) or "none fired"
        lines += ["", f"Sanity checks (answer nothing; not counted in the rate): {fired}."]
    return "\n".join(lines) + "\n"


def fig_validation(summary: dict, stem: Path) -> list[Path]:
    """One row per (method, rule): each control's statistic, the threshold as a tick."""
    apply_style()
    checks = [
        (model, entry["control"], c)
        for model, entry in summary["models"].items()
        for c in entry["checks"]
        if c["value"] is not None and c["n"]
    ]
    if not checks:
        return empty_figure(stem, "no control was analysed")
    labels = sorted({_label(c) for _m, _k, c in checks})
    models = list(summary["models"])
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(labels) + 1.2))
    colours = {"positive": "#1b9e77", "negative": "#d95f02"}
    markers = ["o", "s", "^", "D"]
    for i, model in enumerate(models):
        pts = [(labels.index(_label(c)), c) for m, _k, c in checks if m == model]
        kind = summary["models"][model]["control"]
        ax.scatter(
            [c["value"] for _y, c in pts],
            [y + 0.12 * (i - (len(models) - 1) / 2) for y, _c in pts],
            color=colours[kind],
            marker=markers[i % len(markers)],
            s=18,
            label=f"{model} ({kind})",
            zorder=3,
        )
    for y, label in enumerate(labels):
        threshold = next(c["threshold"] for _m, _k, c in checks if _label(c) == label)
        ax.plot([threshold, threshold], [y - 0.35, y + 0.35], color="black", lw=1.0)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("statistic (| = threshold)")
    rate = summary.get("false_positive_rate")
    ax.set_title(
        "Method validation"
        + (f": negative controls' false-positive rate {rate:.2f}" if rate is not None else "")
    )
    ax.legend(loc="lower right", fontsize=6)
    return save_figure(fig, stem)
