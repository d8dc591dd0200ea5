"""Fault behaviour: `kill -9` of a running workflow in the middle of its longest rule (an MLLM's
training), then the rerun a user makes (docs/troubleshooting.md, "After a crash"): it refuses to
start on the stale lock until `snakemake --unlock`, then resumes: finished jobs are not redone,
the interrupted job is, and the final outputs equal those of an uninterrupted run byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.workflow import snakemake

pytestmark = pytest.mark.slow

# the toy-llava checkpoint and its evaluation: tokenizer, vision tower, toy-llm, toy-llava
TARGET_MODEL = "toy-llava"


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _config(repo: Path, out: Path) -> Path:
    """CI's configuration with training (tests/ci_train_config.yaml stacked on it)."""
    cfg = _merge(
        yaml.safe_load((repo / "tests" / "ci_config.yaml").read_text()),
        yaml.safe_load((repo / "tests" / "ci_train_config.yaml").read_text()),
    )
    cfg["paths"] = {k: str(out / k) for k in ("data", "results", "figures", "tables", "logs")}
    # long enough to be killed in the middle (the other stages keep the CI sizes)
    cfg["toy_training"]["mllms"][TARGET_MODEL]["finetune_steps"] = 150
    path = out / "config.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _targets(out: Path) -> list[str]:
    return [
        str(out / "results" / "models" / TARGET_MODEL / "training_log.json"),
        str(out / "results" / "metrics" / "accuracy" / f"{TARGET_MODEL}.json"),
    ]


def _final_files(out: Path) -> dict[str, bytes]:
    """Every file the run leaves under results/ (checkpoints, scores, accuracy), by path; the
    run's own folder, which a checkpoint's config.json records (`_name_or_path` of the parts
    it was assembled from), is written as <out>."""
    root = out / "results"
    return {
        str(p.relative_to(root)): p.read_bytes().replace(str(out).encode(), b"<out>")
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "training_log.json"  # it records wall-clock times
    }


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_kill_9_mid_rule_then_unlock_and_rerun_equals_an_uninterrupted_run(repo_root, tmp_path):
    ref_out = tmp_path / "reference"
    ref_cfg = _config(repo_root, ref_out)
    proc = snakemake(repo_root, *_targets(ref_out), "--configfile", str(ref_cfg))
    assert proc.returncode == 0, proc.stderr[-4000:]

    out = tmp_path / "crashed"
    cfg = _config(repo_root, out)
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), *_targets(out), "--cores", "2", "--configfile", str(cfg)]
    log = (out / "first_run.log").open("w")
    run = subprocess.Popen(
        cmd, cwd=repo_root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    job_log = out / "logs" / f"train_mllm_{TARGET_MODEL}.log"
    done = out / "results" / "models" / TARGET_MODEL / "training_log.json"
    while not job_log.exists():  # the MLLM's training job has started
        assert run.poll() is None, (out / "first_run.log").read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(2)
    assert not done.exists(), "the training finished before it could be interrupted"
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its running job (same process group)
    run.wait()
    log.close()
    while not _group_gone(run.pid):  # no orphan keeps writing
        time.sleep(0.1)
    assert not done.exists()
    finished_before = {
        p: p.stat().st_mtime_ns for p in (out / "results" / "models").rglob("*.safetensors")
    }
    assert any(TARGET_MODEL not in str(p) for p in finished_before)  # e.g. toy-llm was done

    again = snakemake(repo_root, *_targets(out), "--configfile", str(cfg))
    assert again.returncode != 0 and "--unlock" in again.stdout + again.stderr
    unlock = snakemake(repo_root, *_targets(out), "--unlock", "--configfile", str(cfg))
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    resumed = snakemake(repo_root, *_targets(out), "--configfile", str(cfg))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    text = resumed.stdout + resumed.stderr
    assert "rule train_mllm:" in text and "rule train_text_model:" not in text
    for p, mtime in finished_before.items():  # finished jobs were kept, not redone
        if TARGET_MODEL not in str(p.relative_to(out)):
            assert p.stat().st_mtime_ns == mtime, p
    assert _final_files(out) == _final_files(ref_out)
