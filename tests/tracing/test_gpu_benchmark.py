"""benchmarks/gpu_7b.py, the script for a lent GPU, runs end to end at a tiny scale on the CPU for
each family it measures (LLaVA-1.5 and Qwen2-VL shapes), so it is known to work before device
time is spent on it; its gate check passes and the engine traces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_7b.py"


@pytest.mark.parametrize("family", ["llava-1.5", "qwen2-vl"])
def test_gpu_script_runs_at_tiny_scale_on_cpu(capsys, family):
    spec = importlib.util.spec_from_file_location("gpu_7b", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(
        ["--tiny", "--device", "cpu", "--dtype", "float32", "--questions", "1", "--text", "8"]
        + ["--family", family]
    )
    printed = capsys.readouterr().out
    assert "seconds/question" in printed and "projected" in printed and "check:" in printed
    assert out["shape"] == f"tiny {family}" and out["seconds_per_question"] > 0
    assert out["tflop_per_question"] > 0 and out["hours"] > 0
    assert out["peak_gib"] is None  # no GPU memory on the CPU
    assert out["check"]["passed"] and set(out["path"]) == {"engine"}
