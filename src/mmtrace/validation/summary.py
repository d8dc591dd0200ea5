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
) -> dict:
    """`controls`: model -> positive | negative. A control without its own ground truth (a
    random copy) is scored against the planted tokens of the positive control's truth for the
    token-level rules, and declares sites by the same thresholds."""
    reference = next((t for t in truths.values() if not t.get("route_cut")), None)
    out: dict = {"rules": rules.model_dump(), "models": {}}
    fired: dict[str, list[bool]] = defaultdict(list)
    for model, kind in sorted(controls.items()):
        truth = truths.get(model)
        routes = truth["routes"] if truth and kind == "positive" else None
        planted = (truth or reference or {}).get("planted_visual_tokens", [])
        rows = checks.tracing(traces.get(model, []), routes, rules)
        if planted:
            rows += checks.contributions(contributions.get(model, []), planted, rules)
            rows += checks.ablation(ablations.get(model, []), len(planted), rules)
        if kind == "positive" and truth:
            rows += checks.editing(edits.get(model), truth["storage"]["layer"], rules)
        entry = {"control": kind, "checks": rows}
        if kind == "positive":
            scored = [r for r in rows if r["n"] > 0]
            entry["passed"] = sum(r["holds"] for r in scored)
            entry["failed"] = [f"{r['method']}: {r['rule']}" for r in scored if not r["holds"]]
            entry["total"] = len(scored)
        else:
            claims = [r for r in rows if r["rule"] in NEGATIVE_CLAIMS and r["n"] > 0]
            for r in claims:
                fired[model].append(r["holds"])
            entry["fired"] = [f"{r['method']}: {r['rule']}" for r in claims if r["holds"]]
            entry["total"] = len(claims)
        out["models"][model] = entry
    total = sum(len(v) for v in fired.values())
    out["false_positive_rate"] = (sum(sum(v) for v in fired.values()) / total) if total else None
    out["negative_checks"] = total
    return out


# The claims a negative control must not make (each method's "mechanism found").
NEGATIVE_CLAIMS = (
    "site declared",
    "planted tokens dominate",
    "top-k knocks the answer out",
)
