"""Every claim rule on the controls: does each rule say what the controls' construction implies?

A method that finds its known mechanism in the positive control is not yet a claim rule that
does: the claims table reads the methods' outputs through decision rules (Holm-corrected
per-layer tests, permutation tests, bands of depth), and those rules are validated here, on
the same controls, with the same statistics. Each control is decided as if it were a studied
model. A control names the verdicts its construction fixes (config `validation.expect`, e.g.
F1 `supported` where the facts are stored early at the visual constraint, or F3 `supported` for
a negative whose constraint reads the image as the positive's does though it stores the facts
elsewhere); a positive control's rules it does not name are reported, not scored. On a negative
or sanity control every rule it does not name must stay silent: `not supported` and
`inconclusive` both mean that. A rule that says `supported` on a decoy or on random weights is
broken, and this table is where that shows.
"""

from __future__ import annotations

from dataclasses import replace

from mmtrace.config import Claims
from mmtrace.verdicts.claims import SUPPORTED, Row
from mmtrace.verdicts.evidence import Evidence

SILENT = "not supported / inconclusive"


def _decide_as_studied(ev: Evidence, rules: Claims) -> list[Row]:
    from mmtrace.verdicts import edges, editing, storage, transfer

    controls = set(ev.controls)
    studied = replace(ev, roles={m: r for m, r in ev.roles.items() if m in controls}, controls={})
    out = []
    for module in (storage, transfer, editing):
        rows, fragile = edges.fragile(lambda m=module: m.rows(studied, rules), rules.margins)
        for r in rows:
            r.fragile = fragile.get((r.claim, r.model), [])
        out += rows
    return out


def on_controls(ev: Evidence, rules: Claims, expect: dict[str, dict[str, str]]) -> dict:
    """Per claim rule and control: the verdict, what the control's construction implies
    (`expect` where it names the rule; else silence for a negative or sanity control, nothing
    for a positive one) and whether they agree."""
    rows = []
    for r in _decide_as_studied(ev, rules):
        kind = ev.controls.get(r.model.split(" vs ")[0])
        if kind is None:
            continue
        named = expect.get(r.model.split(" vs ")[0], {}).get(r.claim)
        agrees: bool | None
        if named is not None:
            expected, agrees = named, r.verdict == named
        elif kind in ("negative", "sanity"):
            expected, agrees = SILENT, r.verdict != SUPPORTED
        else:
            expected, agrees = None, None
        rows.append(
            {
                "claim": r.claim,
                "model": r.model,
                "control": kind,
                "verdict": r.verdict,
                "expected": expected,
                "agrees": agrees,
                "fragile": r.fragile,
                "reason": r.reason,
            }
        )
    scored = [r for r in rows if r["agrees"] is not None]
    return {
        "rows": rows,
        "scored": len(scored),
        "agree": sum(r["agrees"] for r in scored),
        "broken": [f"{r['claim']} on {r['model']}" for r in scored if not r["agrees"]],
    }


def markdown(result: dict) -> str:
    """One row per claim rule, one column per control: the verdict, with ✗ where it contradicts
    the control's construction (and ✓ where a positive control's expected verdict holds)."""
    models = sorted({r["model"] for r in result["rows"]})
    claims = list(dict.fromkeys(r["claim"] for r in result["rows"]))
    cell = {(r["claim"], r["model"]): r for r in result["rows"]}
    lines = [
        "| claim rule | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for claim in claims:
        cells = []
        for m in models:
            r = cell.get((claim, m))
            if r is None:
                cells.append("")
                continue
            mark = {True: " ✓", False: " ✗", None: ""}[r["agrees"]]
            if r["expected"] == SILENT and r["agrees"]:
                mark = ""  # silence is the expected state: only a firing rule is marked
            cells.append(f"{r['verdict']}{mark}")
        lines.append(f"| {claim} | " + " | ".join(cells) + " |")
    broken = ", ".join(result["broken"]) or "none"
    lines += [
        "",
        f"{result['agree']} of {result['scored']} scored verdicts agree with the controls' "
        f"construction; contradicted: {broken}. ✓ a verdict the construction fixes (config "
        "`validation.expect`), ✗ one it contradicts (a negative or sanity control's `supported` "
        "where nothing is named is a false positive); unmarked cells are silent as required or "
        "not scored.",
    ]
    return "\n".join(lines) + "\n"
