"""The pinned numerical code paths: set in the environment without touching the caller's other
variables, named in every job's log, and a pin the CPU cannot honour is said, not hidden."""

from __future__ import annotations

import logging
import subprocess
import sys

from mmtrace import numerics


def test_apply_sets_the_pins_and_reports_what_it_replaced():
    env = {"MKL_CBWR": "COMPATIBLE", "PATH": "/bin"}
    replaced = numerics.apply(numerics.PINS, env)
    assert replaced == {"MKL_CBWR": "COMPATIBLE"}
    assert {k: env[k] for k in numerics.PINS} == numerics.PINS and env["PATH"] == "/bin"


def test_a_pin_the_cpu_cannot_honour_is_named():
    info = {"pins": {"ATEN_CPU_CAPABILITY": "avx2"}, "torch_cpu_capability": "DEFAULT", "cpu": "x"}
    assert "not bit for bit" in numerics.unhonoured(info)
    assert numerics.unhonoured({**info, "torch_cpu_capability": "AVX2"}) is None
    assert numerics.unhonoured({**info, "pins": {}}) is None


def test_a_job_logs_versions_pins_and_the_capability_torch_ran(caplog, monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512_bogus")  # what torch cannot run
    with caplog.at_level(logging.INFO, logger="mmtrace.numerics"), numerics.job_environment():
        import torch

        torch.ones(2) @ torch.ones(2)
    text = caplog.text
    assert "'torch':" in text and "'ATEN_CPU_CAPABILITY': 'avx512_bogus'" in text
    assert "torch ran with capability" in text
    assert "not bit for bit" in text  # the pin differs from what this process runs


def test_the_pins_reach_torch_in_a_new_process():
    """Set before torch computes (as the workflow does for every job), ATen runs the pinned
    capability: the variable is really the one torch reads."""
    env = {"PATH": "/usr/bin:/bin"}
    numerics.apply({"ATEN_CPU_CAPABILITY": "default"}, env)
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "DEFAULT", out.stderr
