"""The reproduction check (`snakemake verify`): a run's key statistics and verdicts against a
committed reference, under the tolerances of config `verify`.

Byte-identity holds on one machine only: floating-point rounding differs between CPUs and
changes the trained toy models a little, so across machines the check is agreement within
declared tolerances, and a verdict that flips is reported by name."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from mmtrace.config import Verify
from mmtrace.verdicts.claims import Row
from mmtrace.verdicts.evidence import Evidence


def key_statistics(ev: Evidence, rows: list[Row]) -> dict[str, float | str | None]:
    """The numbers a reader would quote from a run, flat and named by where they come from:
    accuracies, peak layers and IE, concentrations, AUROCs, ablation drops, edit metrics, and
    every claim row's numbers and verdict."""
    out: dict[str, float | str | None] = {}
    for model, m in ev.accuracy.items():
        for split, s in m.get("splits", {}).items():
            out[f"accuracy/{model}/{split}"] = s["accuracy"]
    for model, m in ev.trace.items():
        for split, s in m.items():
            for setting, kinds in s.get("traces", {}).items():
                for kind, windows in kinds.items():
                    for w, e in windows.items():
                        base = f"trace/{model}/{split}/{setting}/{kind}/{w}"
                        out[f"{base}/peak_layer"] = e["peak_layer_at_constraint"]
                        out[f"{base}/peak_ie"] = e["peak_mean_ie_at_constraint"]
    for model, m in ev.editing.items():
        for scenario, e in m.get("scenarios", {}).items():
            for method in ("unedited", "multedit", "finetune", "finetune_constrained"):
                for metric in ("efficacy", "generalisation", "specificity"):
                    value = e.get(method, {}).get(metric, {}).get("mean")
                    if value is not None:
                        out[f"editing/{model}/{scenario}/{method}/{metric}"] = value
    for row in rows:
        base = f"claim/{row.claim}/{row.model}"
        out[f"{base}/verdict"] = row.verdict
        for name, value in row.numbers.items():
            out[f"{base}/{name}"] = value
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Comparison:
    name: str
    reference: float | str | None
    run: float | str | None
    tolerance: str
    agrees: bool


def tolerance_for(name: str, cfg: Verify) -> tuple[str, float, float]:
    """The most specific (longest) pattern of `cfg.tolerances` matching `name` (fnmatch, or a
    prefix of the name's path), else `default`."""
    best = "default"
    for pattern in cfg.tolerances:
        if pattern == "default":
            continue
        hit = fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern.rstrip("/") + "/")
        if hit and len(pattern) > len(best if best != "default" else ""):
            best = pattern
    t = cfg.tolerances[best]
    return best, t.abs, t.rel


FRAGILE = "verdict (fragile)"


def fragile_rows(*claims: dict) -> set[str]:
    """`claim/<claim>/<model>` of every row that is fragile in any of the claims files."""
    return {
        f"claim/{r['claim']}/{r['model']}"
        for c in claims
        for r in c.get("rows", [])
        if r.get("fragile")
    }


def compare(
    run: dict, reference: dict, cfg: Verify, fragile: set[str] = frozenset()
) -> list[Comparison]:
    """Every statistic of either side; one missing on a side differs (named, never skipped).
    A verdict of a row that is fragile on either side (`fragile`) is compared as such: its
    flip is reported, and expected, not failed."""
    out = []
    for name in sorted(set(run) | set(reference)):
        a, b = run.get(name), reference.get(name)
        if isinstance(a, str) or isinstance(b, str):
            kind = "equal"
            if name.endswith("/verdict"):
                kind = FRAGILE if name.removesuffix("/verdict") in fragile else "verdict"
            out.append(Comparison(name, b, a, kind, a == b))
            continue
        pattern, abs_tol, rel_tol = tolerance_for(name, cfg)
        if name not in run or name not in reference:
            agrees = False
        elif a is None or b is None:
            agrees = a is None and b is None
        else:
            limit = abs_tol + rel_tol * abs(b)
            agrees = math.isfinite(a) and abs(a - b) <= limit
        out.append(Comparison(name, b, a, f"{pattern}: {abs_tol:g} + {rel_tol:g}*|ref|", agrees))
    return out


def failures(comparisons: list[Comparison], cfg: Verify) -> list[Comparison]:
    """The comparisons that fail the check (verdict flips only if `cfg.verdicts` is fail)."""
    return [
        c
        for c in comparisons
        if not c.agrees
        and c.tolerance != FRAGILE
        and (cfg.verdicts == "fail" or c.tolerance != "verdict")
    ]


def _fmt(v) -> str:
    if v is None:
        return "missing"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def report(comparisons: list[Comparison], cfg: Verify, reference_name: str) -> str:
    """results/reproduction.md: the verdicts first, then every number, agree or differ."""
    failed = failures(comparisons, cfg)
    verdicts = [c for c in comparisons if c.tolerance in ("verdict", FRAGILE)]
    numbers = [c for c in comparisons if c.tolerance not in ("verdict", FRAGILE)]
    flips = [c for c in verdicts if not c.agrees]
    fragile_flips = [c for c in flips if c.tolerance == FRAGILE]
    lines = [
        "# Reproduction check",
        "",
        f"Reference: `{reference_name}`. Result: **{'FAIL' if failed else 'PASS'}** "
        f"({len(comparisons) - len([c for c in comparisons if not c.agrees])} of "
        f"{len(comparisons)} agree; {len(flips)} verdict(s) flipped, {len(fragile_flips)} of "
        f"them fragile (decided within a declared margin: reported, not failed); other verdict "
        f"flips {'fail' if cfg.verdicts == 'fail' else 'are reported only'}).",
        "",
        "## Verdicts",
        "",
        "| claim / model | reference | this run | |",
        "|---|---|---|---|",
    ]
    for c in verdicts:
        state = "agree" if c.agrees else "**differ**"
        if c.tolerance == FRAGILE:
            state += " (fragile)"
        lines.append(
            f"| {c.name.removesuffix('/verdict')} | {_fmt(c.reference)} | {_fmt(c.run)} | {state} |"
        )
    lines += [
        "",
        "## Numbers",
        "",
        "| statistic | reference | this run | tolerance | |",
        "|---|---|---|---|---|",
    ]
    for c in numbers:
        lines.append(
            f"| {c.name} | {_fmt(c.reference)} | {_fmt(c.run)} | {c.tolerance} | "
            f"{'agree' if c.agrees else '**differ**'} |"
        )
    return "\n".join(lines) + "\n"
