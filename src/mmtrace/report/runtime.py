"""The README's run-time sentence, generated from a timed run (reference/run_time.json, written by
`benchmarks/run_time.py`), so the run time is stated in one place and never typed by hand."""

from __future__ import annotations

RUNTIME_BEGIN = (
    "<!-- runtime:begin (generated from reference/run_time.json by `make claims-readme`) -->"
)
RUNTIME_END = "<!-- runtime:end -->"


def _duration(seconds: float) -> str:
    """`1 h 2 min 3 s`, `18 min 16 s` or `42 s`."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _memory(mb: float) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb:.0f} MB"


def runtime_markdown(record: dict) -> str:
    """One or two sentences on a timed run: wall time, CPU time (user + system), benchmarked
    jobs, the largest job's peak memory, then the machine (CPU, cores, one-thread `torch.mm`
    peak), the date and the commit. `record` is benchmarks/run_time.py's JSON."""
    machine = record.get("machine") or {}
    first = (
        f"Run time: `{record['command']}` ({record['label']}) took "
        f"**{_duration(record['wall_s'])}** of wall time and "
        f"{record['user_s']:,.0f} + {record['system_s']:,.0f} CPU-seconds (user + system) "
        f"in {record['jobs']} benchmarked jobs"
    )
    if record.get("max_job_rss_mb"):
        first += f"; no job used more than {_memory(record['max_job_rss_mb'])} of memory"
    if record.get("returncode"):
        first += f"; the command exited with status {record['returncode']}"
    where = f"{machine.get('cpu', 'an unrecorded CPU')}"
    if machine.get("cores"):
        where += f", {machine['cores']} cores"
    if machine.get("torch_mm_gflops_1thread"):
        where += f", one-thread `torch.mm` peak {machine['torch_mm_gflops_1thread']:g} GFLOP/s"
    second = f"Measured on {record['date']} on {where}, commit `{record['commit']}`."
    return f"{first}. {second}\n"


def splice_block(readme: str, begin: str, end: str, body: str, what: str) -> str:
    """`readme` with the text between the markers `begin` and `end` replaced by `body`."""
    if begin not in readme or end not in readme:
        raise ValueError(f"README lacks the {what} markers {begin!r} ... {end!r}")
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def splice_runtime(readme: str, record: dict) -> str:
    """The README with the text between its run-time markers replaced by
    `runtime_markdown(record)`."""
    return splice_block(readme, RUNTIME_BEGIN, RUNTIME_END, runtime_markdown(record), "runtime")


PIN_COST_BEGIN = (
    "<!-- pincost:begin (generated from reference/pin_cost.json by `make claims-readme`) -->"
)
PIN_COST_END = "<!-- pincost:end -->"


def pin_cost_markdown(record: dict) -> str:
    """What the pins cost (benchmarks/pin_cost.py): per job, CPU seconds with and without them,
    and the total ratio, on the machine named."""
    lines = [
        "| job (its output) | pinned CPU-s | unpinned CPU-s | ratio |",
        "|---|---|---|---|",
    ]
    for row in record["jobs"]:
        lines.append(
            f"| `{row['target']}` | {row['pinned']:.1f} | {row['unpinned']:.1f} | "
            f"{row['ratio']:.2f} |"
        )
    lines += [
        "",
        f"Together {record['pinned_cpu_s']:.0f} CPU-s pinned against "
        f"{record['unpinned_cpu_s']:.0f} unpinned (ratio {record['ratio']:.2f}) on "
        f"{record['machine']['cpu']}, each job forced on its own on one thread, Snakemake's "
        "start-up subtracted. Differences of a few percent are within what other load on the "
        "machine moves a job's CPU time.",
    ]
    return "\n".join(lines) + "\n"


def splice_pin_cost(text: str, record: dict) -> str:
    return splice_block(text, PIN_COST_BEGIN, PIN_COST_END, pin_cost_markdown(record), "pin cost")
