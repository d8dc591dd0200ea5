"""Figure and table jobs are many small jobs (one per figure): each must start without loading
torch and transformers, which cost about 4 CPU-seconds per job (the performance issue's budget)."""

from __future__ import annotations

import subprocess
import sys

import pytest

REPORT_MODULES = [
    "mmtrace.report.traces",
    "mmtrace.report.transfer",
    "mmtrace.report.editing",
    "mmtrace.report.validation",
    "mmtrace.report.claims",
    "mmtrace.report.examples",
    "mmtrace.report.tables",
    "mmtrace.steps.trace",
    "mmtrace.steps.transfer",
    "mmtrace.steps.editing",
    "mmtrace.steps.figures",
    "mmtrace.steps.tables",
]


@pytest.mark.parametrize("module", REPORT_MODULES)
def test_report_module_does_not_load_torch(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing {module} loads {out}"
