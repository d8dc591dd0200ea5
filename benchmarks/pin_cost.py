"""What pinning torch's numerical code paths costs (config `numerics`, docs/reproducibility.md):
the CPU seconds of the default run's heaviest jobs, each rerun with the pins and without them,
alternately, in one process (reference/pin_cost.json).

    python benchmarks/pin_cost.py --run DIR --out reference/pin_cost.json

`DIR` is a finished default run (a clone where `snakemake --cores all` completed); it is changed
in place (the jobs are forced), so give it a copy. Each measurement is one `snakemake --cores 1
--force <target>` (the job alone, one thread), its CPU time read from the children's rusage,
less Snakemake's own start-up (the same command on an up-to-date target). Without the pins torch
takes the machine's best code path (ATEN_CPU_CAPABILITY and oneDNN's ISA as detected, MKL
unconstrained); the ratio is what the pins cost on this CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_time import cpu_model  # noqa: E402

# the jobs that hold most of a default run's CPU time: tracing, the sweep and edits, the
# attention and ablation of one studied MLLM, and the compiled positive's tracing
TARGETS = (
    "results/trace/toy-llava/known_shard0.json",
    "results/editing/toy-llava/sweep.json",
    "results/editing/toy-llava/long_tail_shard0.json",
    "results/attention/toy-llava/known_shard0.json",
    "results/ablation/toy-llava/known_shard0.json",
    "results/trace/toy-llava-compiled/known_shard0.json",
)


def cpu_seconds(cmd: list[str], cwd: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"pin_cost: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--only", nargs="+", default=None, help="measure these targets again, kept in --out"
    )
    args = parser.parse_args(argv)
    rows = []
    if args.only:
        old = json.loads(args.out.read_text())["jobs"]
        rows = [r for r in old if r["target"] not in args.only]
    for target in args.only or TARGETS:
        if not (args.run / target).is_file():
            sys.exit(f"pin_cost: {args.run / target} missing: give a finished default run")
        base = [sys.executable, "-m", "snakemake", "--cores", "1"]
        quiet = ["--quiet", "all"]  # last: --quiet and --config take several values
        # a job forced before may have left this target out of date: bring it up to date,
        # then the same command costs Snakemake's start-up only
        cpu_seconds([*base, target, *quiet], args.run)
        idle = cpu_seconds([*base, target, *quiet], args.run)
        cost = {"pinned": [], "unpinned": []}
        for _ in range(args.repeats):
            for label, pin in (("pinned", "true"), ("unpinned", "false")):
                pins = f"numerics={{pin: {pin}}}"
                cmd = [*base, "--force", target, "--config", pins, *quiet]
                cost[label].append(cpu_seconds(cmd, args.run) - idle)
        row = {"target": target, "startup_cpu_s": idle}
        row |= {k: min(v) for k, v in cost.items()}
        row["ratio"] = row["pinned"] / row["unpinned"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    rows.sort(key=lambda r: TARGETS.index(r["target"]) if r["target"] in TARGETS else 99)
    pinned = sum(r["pinned"] for r in rows)
    unpinned = sum(r["unpinned"] for r in rows)
    record = {
        "machine": {"cpu": cpu_model()},
        "jobs": rows,
        "pinned_cpu_s": pinned,
        "unpinned_cpu_s": unpinned,
        "ratio": pinned / unpinned,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
