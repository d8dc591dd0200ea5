"""Checks of the job resources a cluster run submits (the SLURM profile's site settings).

`profiles/slurm/config.yaml` ships with placeholders ("your_account", "your_cpu_partition",
"your_gpu_partition") where every site has its own names. Submitted as they are, SLURM refuses
the jobs one by one with messages that do not say which file to edit; `placeholder_problems`
finds them in the jobs a run is about to submit so that the run stops before the first sbatch,
naming each key, the rules that carry it and where to set it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Every placeholder in profiles/slurm/config.yaml starts with this.
PLACEHOLDER_PREFIX = "your_"
# Each placeholder of the profile: where it is set, and what to set it to.
WHERE = {
    "your_account": (
        "default-resources: slurm_account",
        "your SLURM account (`sacctmgr -n show assoc user=$USER format=account`)",
    ),
    "your_cpu_partition": (
        "default-resources: slurm_partition",
        "your CPU partition (`sinfo -s` lists the partitions)",
    ),
    "your_gpu_partition": (
        "set-resources: train_vision: &model_job: slurm_partition (the other model jobs refer "
        "to it)",
        "a partition with GPUs when use_gpu is true, or your CPU partition when it is false",
    ),
}


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)


def placeholder_problems(jobs: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One line per resource key that still holds a placeholder in any of `jobs` ((rule name,
    resources) pairs), naming the value, the rules, where to set it and how to look it up."""
    found: dict[tuple[str, str], set[str]] = {}
    for rule, resources in jobs:
        for key, value in resources.items():
            if is_placeholder(value):
                found.setdefault((key, value), set()).add(rule)
    lines = []
    for (key, value), rules in sorted(found.items()):
        where, what = WHERE.get(value, (key, "your cluster's value"))
        lines.append(f"{key}={value!r} (rules: {', '.join(sorted(rules))}): set {where} to {what}")
    return lines


def placeholder_message(problems: list[str], profile: str = "profiles/slurm/config.yaml") -> str:
    return (
        f"The SLURM profile still has placeholders; edit {profile} (or pass a complete "
        "--default-resources/--set-resources on the command line, which replace the "
        "profile's lists):\n  - " + "\n  - ".join(problems) + "\nSee docs/paper-scale.md, 'SLURM'."
    )
