"""Verdicts that survive a reseed: the claims of several complete runs, one per seed, pooled.

One trained model per architecture is one sample: a fresh run with another seed (another toy
world draw, other training and analysis draws) can move a peak layer or flip a test. A claim's
pooled verdict is the seeds' common verdict, or `unstable` where they disagree."""

from __future__ import annotations

UNSTABLE = "unstable"


def pool(per_seed: dict[int, dict]) -> dict:
    """`per_seed`: seed -> a run's claims (results/claims.json). One row per (claim, model) seen
    in any seed: the verdict per seed (`absent` where that seed has no such row) and the
    pooled verdict."""
    seeds = sorted(per_seed)
    keys: dict[tuple[str, str], dict[int, dict]] = {}
    for seed in seeds:
        for row in per_seed[seed]["rows"]:
            keys.setdefault((row["claim"], row["model"]), {})[seed] = row
    rows = []
    for (claim, model), by_seed in keys.items():
        verdicts = {
            seed: by_seed[seed]["verdict"] if seed in by_seed else "absent" for seed in seeds
        }
        distinct = set(verdicts.values())
        pooled = distinct.pop() if len(distinct) == 1 else UNSTABLE
        rows.append(
            {
                "claim": claim,
                "model": model,
                "verdicts": {str(s): v for s, v in verdicts.items()},
                "pooled": pooled,
                "reasons": {str(s): r["reason"] for s, r in by_seed.items()},
            }
        )
    return {"seeds": seeds, "rows": rows}


def markdown(pooled: dict) -> str:
    seeds = pooled["seeds"]
    head = "| claim | model | " + " | ".join(f"seed {s}" for s in seeds) + " | pooled |"
    lines = [head, "|" + "---|" * (len(seeds) + 3)]
    for r in pooled["rows"]:
        cells = [
            r["claim"],
            r["model"],
            *(r["verdicts"][str(s)] for s in seeds),
            f"**{r['pooled']}**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(pooled: dict) -> str:
    """The README's multi-seed paragraph: how many (claim, model) verdicts every seed agrees on,
    and the ones they do not (the claims table's † rows). Every seed's verdict is in
    `markdown`, which `make claims-readme` writes to reference/robustness.md."""
    seeds = ", ".join(str(s) for s in pooled["seeds"])
    rows = pooled["rows"]
    unstable = [f"{r['claim']} ({r['model']})" for r in rows if r["pooled"] == UNSTABLE]
    text = (
        f"Seeds {seeds}: {len(rows) - len(unstable)} of {len(rows)} verdicts are the same on "
        f"every seed; {len(unstable)} are `{UNSTABLE}`"
    )
    text += (": " + ", ".join(unstable) + ".") if unstable else "."
    return text + "\n"
