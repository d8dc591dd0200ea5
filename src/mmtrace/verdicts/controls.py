"""The method-validation rows: does each method find the mechanism planted in the positive
control, and stay silent on the negative controls (results/validation/summary.json)?"""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row
from mmtrace.verdicts.evidence import Evidence


def rows(ev: Evidence, rules: Claims) -> list[Row]:
    """One Validation row per control: a positive or an answering negative control passes
    when every check finds what its construction implies (the positive's route, the negative's
    other route and nothing at the constraint); a sanity check (answers nothing) when no check
    fires."""
    out = []
    for model, entry in sorted(ev.validation.get("models", {}).items()):
        total = entry.get("total", 0)
        kind = entry["control"]
        if kind in ("positive", "negative"):
            failed = entry.get("failed", [])
            passed = entry.get("passed", 0)
            value = f"{passed}/{total} checks as constructed"
            verdict = INCONCLUSIVE if not total else (NOT_SUPPORTED if failed else SUPPORTED)
            fired = entry.get("fired", [])
            reason = (
                "; ".join(
                    [f"false positives: {'; '.join(fired)}"] * bool(fired)
                    + [f"failed: {'; '.join(f for f in failed if f not in fired)}"]
                    * bool(set(failed) - set(fired))
                )
                or value
            )
            if entry.get("ground_truth") == "planted tokens":
                statement = (
                    "Eq. 1 and ablation find the visual tokens a trained model's data planted"
                )
            elif kind == "positive":
                statement = "each method finds the mechanism built into the positive control"
            else:
                statement = (
                    "each method finds the negative control's other route, and nothing at the "
                    "visual constraint that is not there"
                )
            numbers = {"passed": passed, "total": total, "fired": len(fired)}
        else:
            fired = entry.get("fired", [])
            value = f"{len(fired)}/{total} checks fired"
            verdict = INCONCLUSIVE if not total else (NOT_SUPPORTED if fired else SUPPORTED)
            reason = ("fired: " + "; ".join(fired)) if fired else value
            statement = "sanity check (answers nothing): no method finds a mechanism"
            numbers = {"fired": len(fired), "total": total}
        out.append(
            Row(
                "Validation",
                model,
                statement,
                "not in the paper (method validation)",
                "the checks of config `validation`",
                value,
                "every check as the control's construction implies (positive, negative) / "
                "none fires (sanity)",
                verdict,
                reason,
                numbers,
            )
        )
    return out
