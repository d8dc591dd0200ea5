"""Time a whole workflow run, the way the docs report it (reference/run_time.json).

    python benchmarks/run_time.py --out reference/run_time.json -- snakemake --cores all

runs the command, then records its wall time, the CPU time of everything it started (user and
system, from the kernel's accounting of waited-for children), the machine (CPU model, cores,
one-thread `torch.mm` peak), the commit, and from Snakemake's per-job benchmark files
(`logs/benchmarks/*.tsv`, under config `paths.logs`) each job's CPU seconds and peak memory,
summed by stage. The README's and docs' run-time sentences are generated from that file, so
they name one measured run and cannot drift apart.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# job-name prefixes (benchmark file stems) -> stage
STAGES = (
    ("train_", "training"),
    ("install_checkpoint", "checkpoints"),
    ("compile_mllm", "controls"),
    ("randomize_mllm", "controls"),
    ("toy_world", "data"),
    ("planted_world", "data"),
    ("evaluate_model", "evaluation"),
    ("trace", "tracing"),
    ("attention", "attention"),
    ("ablation", "ablation"),
    ("edit", "editing"),
    ("route", "routes"),
    ("fig", "figures"),
    ("table", "tables"),
    ("model_accuracy", "evaluation"),
    ("validation", "validation"),
    ("claims", "verdicts"),
)


def stage_of(job: str) -> str:
    """`job`: the benchmark file's path below the benchmark folder, without suffix; the figure
    rules keep theirs in a `figures/` subfolder."""
    if job.startswith("figures/"):
        return "figures"
    stem = job.rsplit("/", 1)[-1]
    for prefix, stage in STAGES:
        if stem.startswith(prefix):
            return stage
    return "other"


def jobs(bench_dir: Path) -> list[dict]:
    """Every benchmark file's one row: name, wall and CPU seconds, peak RSS (MB)."""
    out = []
    for path in sorted(bench_dir.rglob("*.tsv")):
        with open(path, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]
        out.append(
            {
                "job": str(path.relative_to(bench_dir).with_suffix("")),
                "stage": stage_of(path.relative_to(bench_dir).with_suffix("").as_posix()),
                "wall_s": float(row["s"]),
                "cpu_s": float(row["cpu_time"]),
                "max_rss_mb": float(row["max_rss"]) if row["max_rss"] != "NA" else None,
            }
        )
    return out


def mm_peak() -> float | None:
    """One-thread float32 1024x1024 matrix product, GFLOP/s (best of 5), in a subprocess so
    this process's environment does not change."""
    code = (
        "import time, torch; torch.set_num_threads(1); a=torch.randn(1024,1024); b=a.clone();"
        "[a@b for _ in range(3)]; best=0\n"
        "for _ in range(5):\n t=time.perf_counter(); [a@b for _ in range(10)];"
        " best=max(best, 10*2*1024**3/(time.perf_counter()-t)/1e9)\n"
        "print(best)"
    )
    try:
        return round(float(subprocess.check_output([sys.executable, "-c", code], text=True)), 1)
    except (subprocess.CalledProcessError, ValueError):
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--logs", type=Path, default=Path("logs"), help="config paths.logs")
    p.add_argument("--label", default="default run on a fresh clone")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    if not command:
        p.error("give the command to time after --")
    start = time.monotonic()
    proc = subprocess.run(command)
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = jobs(args.logs / "benchmarks")
    stages: dict[str, dict] = {}
    for r in rows:
        s = stages.setdefault(r["stage"], {"jobs": 0, "cpu_s": 0.0})
        s["jobs"] += 1
        s["cpu_s"] = round(s["cpu_s"] + r["cpu_s"], 1)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    record = {
        "label": args.label,
        "command": " ".join(command),
        "returncode": proc.returncode,
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "torch_mm_gflops_1thread": mm_peak(),
        },
        "wall_s": round(wall, 1),
        "user_s": round(usage.ru_utime, 1),
        "system_s": round(usage.ru_stime, 1),
        "jobs": len(rows),
        "max_job_rss_mb": max((r["max_rss_mb"] or 0 for r in rows), default=None),
        "stages": dict(sorted(stages.items())),
        "per_job": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"{args.label}: {wall / 60:.1f} min wall, {usage.ru_utime:.0f} + {usage.ru_stime:.0f} "
        f"CPU-s, {len(rows)} benchmarked jobs, exit {proc.returncode} -> {args.out}"
    )
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
