"""The method-validation rows: does each method find the mechanism planted in the positive
control, and stay silent on the negative controls (results/validation/summary.json)?"""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row
from mmtrace.verdicts.evidence import Evidence


def rows(ev: Evidence, rules: Claims) -> list[Row]:
    out = []
    for model, entry in sorted(ev.validation.get("models", {}).items()):
        total = entry.get("total", 0)
        if entry["control"] == "positive":
            failed = entry.get("failed", [])
            passed = entry.get("passed", 0)
            value = f"{passed}/{total} checks hold"
            verdict = INCONCLUSIVE if not total else (NOT_SUPPORTED if failed else SUPPORTED)
            reason = ("failed: " + "; ".join(failed)) if failed else value
            statement = (
                "Eq. 1 and ablation find the visual tokens a trained model's data planted"
                if entry.get("ground_truth") == "planted tokens"
                else "each method finds the mechanism planted in the positive control"
            )
            numbers = {"passed": passed, "total": total}
        else:
            fired = entry.get("fired", [])
            value = f"{len(fired)}/{total} claims fired"
            verdict = INCONCLUSIVE if not total else (NOT_SUPPORTED if fired else SUPPORTED)
            reason = ("false positives: " + "; ".join(fired)) if fired else value
            statement = "no method finds a mechanism in the negative control"
            numbers = {"fired": len(fired), "total": total}
        out.append(
            Row(
                "Validation",
                model,
                statement,
                "not in the paper (method validation)",
                "the checks of config `validation`",
                value,
                "every check holds (positive) / no claim fires (negative)",
                verdict,
                reason,
                numbers,
            )
        )
    return out
