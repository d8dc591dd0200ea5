"""Pooling the claims of several seeds: the common verdict, or `unstable` where seeds differ
(a row one seed lacks counts as a disagreement)."""

from __future__ import annotations

from mmtrace.verdicts.robustness import UNSTABLE, markdown, pool


def run(**verdicts):
    return {
        "rows": [
            {"claim": c, "model": "m", "verdict": v, "reason": f"{c} {v}"}
            for c, v in verdicts.items()
        ]
    }


def test_pooled_verdict_is_common_or_unstable():
    out = pool(
        {
            1: run(F1="supported", F3="not supported", F4="inconclusive"),
            2: run(F1="supported", F3="supported", F4="inconclusive"),
            3: run(F1="supported", F3="supported"),
        }
    )
    pooled = {r["claim"]: r["pooled"] for r in out["rows"]}
    assert pooled == {"F1": "supported", "F3": UNSTABLE, "F4": UNSTABLE}
    f4 = next(r for r in out["rows"] if r["claim"] == "F4")
    assert f4["verdicts"] == {"1": "inconclusive", "2": "inconclusive", "3": "absent"}
    table = markdown(out)
    assert "| seed 1 | seed 2 | seed 3 | pooled |" in table
    assert "| F3 | m | not supported | supported | supported | **unstable** |" in table
