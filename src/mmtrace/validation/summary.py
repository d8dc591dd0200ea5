"""Every control's checks in one summary, and the false-positive rate of the negative controls."""

from __future__ import annotations

from collections import defaultdict

from mmtrace.config import Validation
from mmtrace.validation import checks


def summarise(
    controls: dict[str, str],
    truths: dict[str, dict],
    traces: dict[str, list[dict]],
    contributions: dict[str, list[dict]],
    ablations: dict[str, list[dict]],
    edits: dict[str, dict],
    rules: Validation,
    planted_tokens: dict[str, list[int]] | None = None,
) -> dict:
    """`controls`: model -> positive | negative | sanity. `planted_tokens`: for the controls
    analysed on the planted world, the visual tokens that carry the entity there.

    Every check carries what the control's construction expects (`expected`), and passes when
    the method finds exactly that. A compiled control (positive, or a negative that answers by
    another route) is scored against its ground truth: its expected trace cells, and whether
    the image reaches the visual constraint (Eq. 1's and the knockouts' premise). A *trained*
    positive control (no ground truth of its own, trained on the planted world) is scored on
    what its data fixes: the token-level rules against the planted tokens, and that they carry
    the answer. A sanity check (route cut, random weights: answers nothing) must find nothing;
    it is reported apart, because no method could find something there. The false-positive
    rate counts the negatives' checks that find a mechanism their construction rules out."""
    planted_tokens = planted_tokens or {}
    reference = next((t for t in truths.values() if t.get("control") == "positive"), None)
    out: dict = {"rules": rules.model_dump(), "models": {}}
    fired: dict[str, list[bool]] = defaultdict(list)
    for model, kind in sorted(controls.items()):
        truth = truths.get(model)
        trained = kind == "positive" and truth is None
        planted = planted_tokens.get(model) or (truth or reference or {}).get(
            "planted_visual_tokens", []
        )
        answers = kind != "sanity"
        if truth is not None:
            via_constraint = (truth.get("transfer") or {}).get("position") == "constraint_last"
        else:
            via_constraint = kind == "positive"
        rows = [] if trained else checks.tracing(traces.get(model, []), truth, rules)
        if planted:
            rows += checks.contributions(
                contributions.get(model, []), planted, rules, expected=via_constraint
            )
            rows += checks.ablation(
                ablations.get(model, []),
                len(planted),
                rules,
                content=answers,
                expected=True if via_constraint else (None if answers else False),
            )
        if kind == "positive" and truth:
            rows += checks.editing(edits.get(model), truth["storage"]["layer"], rules)
        entry = {"control": kind, "checks": rows, "ground_truth": _truth_kind(truth, trained)}
        scored = [
            r for r in rows if r["n"] > 0 and not r["diagnostic"] and r["expected"] is not None
        ]
        entry["passed"] = sum(r["holds"] == r["expected"] for r in scored)
        entry["failed"] = [
            f"{r['method']}: {r['rule']}" for r in scored if r["holds"] != r["expected"]
        ]
        entry["fired"] = [
            f"{r['method']}: {r['rule']}" for r in scored if r["holds"] and not r["expected"]
        ]
        entry["total"] = len(scored)
        if kind == "negative":
            fired[model] = [r["holds"] for r in scored if not r["expected"]]
        out["models"][model] = entry
    total = sum(len(v) for v in fired.values())
    out["false_positive_rate"] = (sum(sum(v) for v in fired.values()) / total) if total else None
    out["negative_checks"] = total
    out["sanity_fired"] = {
        m: e["fired"] for m, e in out["models"].items() if e["control"] == "sanity" and e["fired"]
    }
    return out


def _truth_kind(truth: dict | None, trained: bool) -> str:
    if truth is not None:
        return "compiled"
    return "planted tokens" if trained else "none"
