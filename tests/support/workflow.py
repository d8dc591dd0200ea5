"""Running the workflow from the tests: the venv's snakemake in the repository, as a user would.

No wall-clock limit by default: a busy but working machine must not fail a test. Set
MMTRACE_TEST_TIMEOUT (seconds) to bound each run, e.g. on a CI runner that may hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def snakemake(
    repo: Path, *args: str, env: dict | None = None, cores: int = 2
) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", "--cores", str(cores), *args]
    limit = float(os.environ.get("MMTRACE_TEST_TIMEOUT", "0")) or None
    return subprocess.run(
        cmd,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=limit,
        env=env or os.environ.copy(),
    )
