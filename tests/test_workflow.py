"""End to end: the workflow runs on a tiny configuration (CI's), its outputs pass CI's checks,
a second run does nothing, regenerated figures and tables are byte-identical, and the HTML report
holds every figure and table, with captions, when headless Chromium renders it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.chromium import chromium_or_skip, open_every_result, screenshot_result
from support.workflow import snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("wf")
    cfg = yaml.safe_load((repo_root / "tests" / "ci_config.yaml").read_text())
    cfg["paths"] = {k: str(out / k) for k in ("data", "results", "figures", "logs")}
    cfg["paths"]["tables"] = str(out / "paper_tables")  # the layout .ci/check_outputs.py reads
    cfg_file = out / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo_root, "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return repo_root, out, cfg_file


def test_outputs_exist(run):
    _, out, _ = run
    for rel in (
        "figures/toy_world_examples.pdf",
        "figures/toy_world_examples.png",
        "paper_tables/dataset_stats.tex",
        "paper_tables/model_accuracy.tex",
        "results/metrics/model_accuracy.json",
        "results/trace/summary.json",
        "figures/fig1_mllm_vs_llm_toy-llava.pdf",
        "figures/trace_avg_single_toy-llava_w3.png",
        "figures/trace_avg_multi_toy-phi_w3.pdf",
        "figures/trace_avg_llm_toy-llm_w3.pdf",
        "figures/trace_examples_toy-phi.png",
    ):
        assert (out / rel).stat().st_size > 0, rel
    # the shipped checkpoints were installed (verified), and nothing was trained
    assert (out / "logs" / "install_checkpoint_toy-llava.log").is_file()
    assert not list((out / "logs").glob("train_*.log"))


def test_second_run_does_nothing(run):
    repo, _, cfg_file = run
    proc = snakemake(repo, "--configfile", str(cfg_file), "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_regenerated_figures_and_tables_are_byte_identical(run):
    repo, out, cfg_file = run
    targets = sorted((out / "figures").glob("*")) + sorted((out / "paper_tables").glob("*.tex"))
    before = {p: p.read_bytes() for p in targets}
    shutil.rmtree(out / "figures")
    shutil.rmtree(out / "paper_tables")
    proc = snakemake(repo, "figures", "tables", "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-4000:]
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p.name} differs after regeneration"


def test_outputs_pass_ci_checks(run, repo_root):
    _, out, _ = run
    check = repo_root / ".ci" / "check_outputs.py"
    proc = subprocess.run([sys.executable, str(check), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout


def test_html_report_shows_every_figure_and_table(run, tmp_path):
    """`snakemake --report` (make report) on the finished run, opened in headless Chromium and
    clicked through as a reader would: every figure (PNG) and table the rules mark for the
    report is listed in its section and model, its caption is shown, and a figure's view shows
    exactly that image."""
    repo, out, cfg_file = run
    browser = chromium_or_skip()
    report = tmp_path / "report.html"
    proc = snakemake(repo, "--report", str(report), "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = open_every_result(browser, report, tmp_path / "profile")
    expected = {p.name for p in (out / "figures").glob("*.png")}
    expected |= {p.name for p in (out / "paper_tables").glob("*.tex")}
    assert len(expected) > 20
    assert {Path(p).name for p in seen} == expected
    sections = {v["category"].split(" ", 1)[1].split(" (")[0] for v in seen.values()}
    assert sections == {
        "Data and models",
        "Causal tracing",
        "Information transfer and ablation",
        "Model editing",
        "Does the method work?",
        "Does the paper hold?",
    }
    for path, v in seen.items():
        assert v["listed"] and v["caption"], (path, v)
        assert v["image"] if path.endswith(".png") else v["download"], (path, v)
    # the screenshot of docs/troubleshooting.md: the validation figure opened, its caption
    # beside it; always made here, copied over docs/report.png with MMTRACE_UPDATE_SCREENSHOT=1
    shot = tmp_path / "report.png"
    shown = next(p for p in sorted(seen) if Path(p).name == "validation.png")
    screenshot_result(browser, report, shown, tmp_path / "shot-profile", shot)
    assert shot.stat().st_size > 10_000
    if os.environ.get("MMTRACE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, repo / "docs" / "report.png")


def test_claims_have_a_verdict_and_verify_passes_against_the_ci_reference(run):
    """Every claim row has a verdict and a reason, and `snakemake verify` agrees with the
    committed CI reference (reference/ci.json) within CI's tolerances."""
    repo, out, cfg_file = run
    claims = json.loads((out / "results" / "claims.json").read_text())
    assert claims["rows"] and all(r["verdict"] and r["reason"] for r in claims["rows"])
    proc = snakemake(repo, "verify", "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "**PASS**" in (out / "results" / "reproduction.md").read_text()
