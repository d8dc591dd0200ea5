"""benchmarks/gpu_7b.py, the script for a lent GPU, runs end to end at a tiny scale on the CPU, so
it is known to work before device time is spent on it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_7b.py"


def test_gpu_script_runs_at_tiny_scale_on_cpu(capsys):
    spec = importlib.util.spec_from_file_location("gpu_7b", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(
        ["--tiny", "--device", "cpu", "--dtype", "float32", "--questions", "1", "--text", "8"]
    )
    printed = capsys.readouterr().out
    assert "seconds/question" in printed and "projected" in printed
    assert out["shape"] == "tiny" and out["seconds_per_question"] > 0
    assert out["tflop_per_question"] > 0 and out["hours"] > 0
    assert out["peak_gib"] is None  # no GPU memory on the CPU
