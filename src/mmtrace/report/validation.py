"""The method-validation figure and table: each rule's statistic per control, against its
threshold (`results/validation/summary.json`)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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
    """Every check's row (the LaTeX table's rows, the control named on every row), then the
    negative controls' false-positive rate: `reference/validation.md` and the run's
    `results/validation/summary.md`."""
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
    return "\n".join(lines + _footer(summary)) + "\n"


def _footer(summary: dict) -> list[str]:
    """Under either table: the negative controls' false-positive rate, then what the sanity
    controls fired."""
    out = []
    rate = summary.get("false_positive_rate")
    if rate is not None:
        out += [
            "",
            f"Negative controls' false-positive rate: {rate:.2f} (of "
            f"{summary.get('negative_checks', 0)} checks whose mechanism they rule out).",
        ]
    sanity = summary.get("sanity_fired")
    if sanity is not None:
        fired = "; ".join(f"{m}: {', '.join(f)}" for m, f in sanity.items()) or "none fired"
        out += ["", f"Sanity checks (answer nothing; not counted in the rate): {fired}."]
    return out


def markdown_compact(summary: dict) -> str:
    """The README's validation table: one row per control (its kind, the checks that found what
    its construction implies, those that did not), then the false-positive rate. Every check's
    row is in `markdown`, which `make claims-readme` writes to reference/validation.md."""
    lines = [
        "| control | kind | checks as constructed | not as constructed | verdict |",
        "|---|---|---|---|---|",
    ]
    for model, entry in summary["models"].items():
        kind = entry["control"]
        if entry.get("ground_truth") not in (None, "none"):
            kind += f" ({entry['ground_truth']})"
        total, failed = entry.get("total", 0), entry.get("failed", [])
        passed = entry.get("passed", total - len(failed))
        fired = set(entry.get("fired", []))
        off = [f"{f} (fires)" if f in fired else f for f in failed]
        verdict = "no data" if not total else ("**FAIL**" if failed else "pass")
        cells = [f"`{model}`", kind, f"{passed}/{total}", "; ".join(off) or "-", verdict]
        lines.append(markdown_row(cells))
    return "\n".join(lines + _footer(summary)) + "\n"


# Each rule's direction (`mmtrace.validation.checks`): the statistic must be at least (>=) or at
# most (<=) its threshold, or equal it (=); a check row's own `direction` takes precedence.
DIRECTIONS = {
    "site declared": ">=",
    "argmax on the route": ">=",
    "planted tokens dominate": ">=",
    "efficacy": ">=",
    "generalisation": ">=",
    "quiet off the route": "<=",
    "the planted tokens carry the answer": "<=",
    "top-k knocks the answer out": "<=",
    "specificity": "<=",
    "peaks at the storage layer": "=",
    "declared cells restore": ">=",
    "declared cells stay quiet": ">=",
}
MARKERS = {">=": "^", "<=": "v", "=": "D", "?": "o"}
OUTCOME_COLOURS = {True: "#1b9e77", False: "#d62728", None: "#999999"}


def marks(summary: dict) -> list[dict]:
    """One mark per control and check with data: its label, statistic and threshold, the
    rule's direction, the verdict the validation table gives, and `ok`: whether the method
    found what the control's construction implies (the check's `expected`; None for a row
    reported but not scored). Read from the checks' `holds`, as the table and the claims are,
    never re-derived from the value: some rules combine several statistics."""
    out = []
    for model, entry in summary["models"].items():
        for c in entry["checks"]:
            if c["value"] is None or not c["n"]:
                continue
            expected = c.get("expected", entry["control"] == "positive")
            # reported but not scored: diagnostics, and rows the construction fixes no answer for
            scored = not c.get("diagnostic", False) and expected is not None
            ok = c["holds"] == expected if scored else None
            out.append(
                {
                    "model": model,
                    "control": entry["control"],
                    "label": _label(c),
                    "value": c["value"],
                    "threshold": c["threshold"],
                    "direction": c.get("direction", DIRECTIONS.get(c["rule"], "?")),
                    "verdict": _verdict(entry["control"], c["holds"], not scored, expected),
                    "ok": ok,
                }
            )
    return out


def fig_validation(summary: dict, stem: Path) -> list[Path]:
    """One panel per control, one row per (method, rule): the control's statistic as a marker
    whose shape is the rule's direction (^: must be at least the threshold, v: at most, D:
    equal) and whose colour is the verdict (green: as required, i.e. a positive control passes
    or a negative one stays silent; red: FAIL or a false positive; grey: diagnostic), the
    threshold as a tick, the verdict written at the row's end."""
    apply_style()
    shown = marks(summary)
    if not shown:
        return empty_figure(stem, "no control was analysed")
    labels = sorted({m["label"] for m in shown})
    models = [m for m in summary["models"] if any(x["model"] == m for x in shown)]
    fig = Figure(figsize=(2.6 * len(models) + 2.2, 0.22 * len(labels) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False, sharey=True)[0]
    for ax, model in zip(axes, models, strict=True):
        mine = [m for m in shown if m["model"] == model]
        for m in mine:
            y = labels.index(m["label"])
            ax.plot([m["threshold"]] * 2, [y - 0.35, y + 0.35], color="black", lw=1.0)
            colour = OUTCOME_COLOURS[m["ok"]]
            ax.scatter(
                [m["value"]], [y], marker=MARKERS[m["direction"]], s=22, zorder=3,
                color=colour if m["ok"] is not None else "none", edgecolors=colour,
            )  # fmt: skip
            ax.annotate(
                m["verdict"].replace("diagnostic: ", ""), (1.02, y),
                xycoords=("axes fraction", "data"), fontsize=5, va="center", color=colour,
                annotation_clip=False,
            )  # fmt: skip
        ax.set_title(f"{model}\n({mine[0]['control']} control)", fontsize=7)
        ax.set_xlabel("statistic (| = threshold)")
        ax.margins(x=0.08)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    handles = [
        Line2D([], [], ls="", marker=MARKERS[d], color="#555555", label=text)
        for d, text in ((">=", "must be >= threshold"), ("<=", "must be <= threshold"),
                        ("=", "must equal it"))
    ] + [
        Line2D([], [], ls="", marker="s", color=OUTCOME_COLOURS[k], label=text)
        for k, text in ((True, "as required"), (False, "FAIL / false positive"),
                        (None, "diagnostic"))
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncol=6, fontsize=6)
    rate = summary.get("false_positive_rate")
    fig.suptitle(
        "Method validation"
        + (f": negative controls' false-positive rate {rate:.2f}" if rate is not None else "")
    )
    return save_figure(fig, stem)
