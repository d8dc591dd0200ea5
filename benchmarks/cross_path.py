"""How far two runs of the same workflow on the same shipped checkpoints differ, per kind of
statistic: the measurement behind `verify.tolerances` (reference/cross_path.json).

    python benchmarks/cross_path.py --reference A/results/claims.json \\
        --run B/results/claims.json --label "..." --out reference/cross_path.json

Run B as A with torch forced onto another code path (docs/reproducibility.md), and this says
what another CPU does to every number: the largest absolute difference per kind (accuracy,
trace, editing, layers, each claim's numbers), how many differ at all, and the verdicts that
flip.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def kind_of(name: str) -> str:
    parts = name.split("/")
    if parts[-1].endswith("_layer"):
        return "layers"
    if parts[0] == "claim":
        return "claim/" + parts[1]
    return parts[0]


def deviations(run: dict, reference: dict) -> dict:
    """Per kind: statistics, how many differ, the largest |difference| and where."""
    out: dict[str, dict] = {}
    flips = []
    for name in sorted(set(run) | set(reference)):
        a, b = run.get(name), reference.get(name)
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                flips.append({"statistic": name, "reference": b, "run": a})
            continue
        k = out.setdefault(kind_of(name), {"n": 0, "differ": 0, "max_abs": 0.0, "at": None})
        k["n"] += 1
        if a is None or b is None:
            if a != b:
                k["differ"] += 1
                k["at"] = k["at"] or name
            continue
        d = abs(a - b)
        if d > 0:
            k["differ"] += 1
        if d > k["max_abs"]:
            k["max_abs"], k["at"] = d, name
    return {"kinds": out, "verdict_flips": flips}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--label", required=True, help="what differs between the runs")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    ref, run = json.loads(args.reference.read_text()), json.loads(args.run.read_text())
    result = {
        "label": args.label,
        "statistics": len(ref["statistics"]),
        **deviations(run["statistics"], ref["statistics"]),
    }
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    worst = max(result["kinds"].values(), key=lambda k: k["max_abs"])
    print(
        f"{result['statistics']} statistics; {len(result['verdict_flips'])} verdict flips; "
        f"largest difference {worst['max_abs']:.3g} ({worst['at']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
