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
    """`controls`: model -> positive | negative. `planted_tokens`: for the controls analysed
    on the planted world, the visual tokens that carry the entity there.

    A compiled control is scored against its ground-truth JSON (route, storage layer, planted
    tokens). A *trained* positive control (no ground truth of its own, trained on the planted
    world) is scored only on what its data fixes: the token-level rules (Eq. 1, ablation)
    against the planted tokens; where it routes or stores the entity is learnt, not known, so
    its tracing and editing are not validated. A negative control without its own truth (a
    random copy) is scored against the compiled control's planted tokens for the token-level
    rules, and declares sites by the same thresholds."""
    planted_tokens = planted_tokens or {}
    reference = next((t for t in truths.values() if not t.get("route_cut")), None)
    out: dict = {"rules": rules.model_dump(), "models": {}}
    fired: dict[str, list[bool]] = defaultdict(list)
    for model, kind in sorted(controls.items()):
        truth = truths.get(model)
        trained = kind == "positive" and truth is None
        routes = truth["routes"] if truth and kind == "positive" else None
        planted = planted_tokens.get(model) or (truth or reference or {}).get(
            "planted_visual_tokens", []
        )
        rows = [] if trained else checks.tracing(traces.get(model, []), routes, rules)
        if planted:
            rows += checks.contributions(contributions.get(model, []), planted, rules)
            rows += checks.ablation(
                ablations.get(model, []), len(planted), rules, content=kind == "positive"
            )
        if kind == "positive" and truth:
            rows += checks.editing(edits.get(model), truth["storage"]["layer"], rules)
        entry = {"control": kind, "checks": rows, "ground_truth": _truth_kind(truth, trained)}
        if kind == "positive":
            scored = [r for r in rows if r["n"] > 0 and not r["diagnostic"]]
            entry["passed"] = sum(r["holds"] for r in scored)
            entry["failed"] = [f"{r['method']}: {r['rule']}" for r in scored if not r["holds"]]
            entry["total"] = len(scored)
        else:
            claims = [
                r
                for r in rows
                if r["rule"] in NEGATIVE_CLAIMS and r["n"] > 0 and not r["diagnostic"]
            ]
            for r in claims:
                fired[model].append(r["holds"])
            entry["fired"] = [f"{r['method']}: {r['rule']}" for r in claims if r["holds"]]
            entry["total"] = len(claims)
        out["models"][model] = entry
    total = sum(len(v) for v in fired.values())
    out["false_positive_rate"] = (sum(sum(v) for v in fired.values()) / total) if total else None
    out["negative_checks"] = total
    return out


def _truth_kind(truth: dict | None, trained: bool) -> str:
    if truth is not None:
        return "compiled"
    return "planted tokens" if trained else "none"


# The claims a negative control must not make (each method's "mechanism found").
NEGATIVE_CLAIMS = (
    "site declared",
    "planted tokens dominate",
    "top-k knocks the answer out",
)
