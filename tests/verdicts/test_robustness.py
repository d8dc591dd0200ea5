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


def test_the_runs_own_verdict_stands_for_its_seed():
    """The committed multi-seed run says seed 1 supported F1 and seed 2 not; a run of seed 1
    that now says `not supported` (the rules changed since) is not marked unstable by the old
    seed-1 verdict; one whose other seeds disagree with it is."""
    from mmtrace.verdicts.claims import Row, mark_seeds, seed_unstable

    pooled = pool({1: run(F1="supported"), 2: run(F1="not supported")})
    row = Row("F1", "m", "", "", "", "", "", "not supported", "", {})
    mark_seeds([row], pooled, own_seed=1)
    assert row.seeds == {"1": "not supported", "2": "not supported"}
    assert not seed_unstable(row.as_dict())
    row.verdict = "supported"
    mark_seeds([row], pooled, own_seed=1)
    assert seed_unstable(row.as_dict())
