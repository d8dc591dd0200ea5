"""The README's run-time sentence: generated from benchmarks/run_time.py's record, spliced between
its markers, and (when reference/run_time.json exists) exactly what the committed README holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmtrace.io import read_json
from mmtrace.report.claims import README_BEGIN, README_END, update_readme
from mmtrace.report.runtime import (
    RUNTIME_BEGIN,
    RUNTIME_END,
    pin_cost_markdown,
    runtime_markdown,
    splice_pin_cost,
    splice_runtime,
)

ROOT = Path(__file__).resolve().parents[2]


def record(**over) -> dict:
    """A synthetic record with benchmarks/run_time.py's fields."""
    out = {
        "label": "default run on a fresh clone",
        "command": "snakemake --cores all",
        "returncode": 0,
        "date": "2030-01-02",
        "commit": "abc1234",
        "machine": {"cpu": "Some CPU @ 2.0GHz", "cores": 2, "torch_mm_gflops_1thread": 101.5},
        "wall_s": 1096.4,
        "user_s": 2065.2,
        "system_s": 104.8,
        "jobs": 98,
        "max_job_rss_mb": 1534.0,
        "stages": {"tracing": {"jobs": 3, "cpu_s": 159.0}},
        "per_job": [],
    }
    out.update(over)
    return out


def test_runtime_sentence_names_every_field():
    text = runtime_markdown(record())
    assert text.endswith("\n") and text.count("\n") == 1
    for part in (
        "`snakemake --cores all` (default run on a fresh clone)",
        "**18 min 16 s** of wall time",
        "2,065 + 105 CPU-seconds (user + system)",
        "98 benchmarked jobs",
        "1.5 GB of memory",
        "2030-01-02",
        "Some CPU @ 2.0GHz, 2 cores",
        "peak 101.5 GFLOP/s",
        "commit `abc1234`",
    ):
        assert part in text, part
    assert "exited" not in text


def test_runtime_sentence_handles_short_long_failed_and_unknown():
    assert "**42 s**" in runtime_markdown(record(wall_s=41.6))
    assert "**1 h 0 min 0 s**" in runtime_markdown(record(wall_s=3599.6))
    text = runtime_markdown(record(returncode=1, max_job_rss_mb=None, machine={}))
    assert "exited with status 1" in text
    assert "of memory" not in text and "an unrecorded CPU" in text
    assert "512 MB" in runtime_markdown(record(max_job_rss_mb=512.0))


def test_splice_runtime_replaces_only_its_block(tmp_path):
    readme = (
        f"a\n{README_BEGIN}\nT\n{README_END}\nb\n{RUNTIME_BEGIN}\nplaceholder\n{RUNTIME_END}\nc\n"
    )
    new = splice_runtime(readme, record())
    assert "placeholder" not in new and "\nT\n" in new and new.endswith(f"{RUNTIME_END}\nc\n")
    with pytest.raises(ValueError, match="runtime markers"):
        splice_runtime("no markers", record())
    # update_readme: the block is rewritten when the file exists, skipped when it does not
    path, claims, timed = tmp_path / "R.md", tmp_path / "c.json", tmp_path / "t.json"
    path.write_text(readme)
    claims.write_text(json.dumps({"rows": []}))
    update_readme(path, claims, run_time=tmp_path / "missing.json")
    assert "placeholder" in path.read_text()
    timed.write_text(json.dumps(record()))
    assert update_readme(path, claims, run_time=timed)
    assert "**18 min 16 s**" in path.read_text()


def test_readme_run_time_is_the_committed_record():
    """README's run-time block is generated from reference/run_time.json (regenerate with
    `make claims-readme`); until that file is committed the block holds a placeholder."""
    readme = (ROOT / "README.md").read_text()
    assert RUNTIME_BEGIN in readme and RUNTIME_END in readme
    timed = ROOT / "reference" / "run_time.json"
    assert splice_runtime(readme, read_json(timed)) == readme


def test_pin_cost_is_the_committed_record():
    """docs/reproducibility.md's pin-cost block is generated from reference/pin_cost.json."""
    page = (ROOT / "docs" / "reproducibility.md").read_text()
    record = read_json(ROOT / "reference" / "pin_cost.json")
    assert splice_pin_cost(page, record) == page
    assert record["jobs"] and all(r["pinned"] > 0 and r["unpinned"] > 0 for r in record["jobs"])


def test_pin_cost_block_states_each_job_and_the_total():
    record = {
        "machine": {"cpu": "X"},
        "jobs": [{"target": "results/a.json", "pinned": 12.0, "unpinned": 10.0, "ratio": 1.2}],
        "pinned_cpu_s": 12.0,
        "unpinned_cpu_s": 10.0,
        "ratio": 1.2,
    }
    text = pin_cost_markdown(record)
    assert "| `results/a.json` | 12.0 | 10.0 | 1.20 |" in text
    assert "12 CPU-s pinned against 10 unpinned (ratio 1.20) on X, each job forced" in text
