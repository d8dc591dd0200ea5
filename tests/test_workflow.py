"""End to end: the workflow runs on a tiny configuration, a second run does nothing, and
regenerated figures and tables are byte-identical."""

from __future__ import annotations

import shutil

import pytest
import yaml
from support.workflow import snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("wf")
    cfg = yaml.safe_load((repo_root / "tests" / "ci_config.yaml").read_text())
    cfg["paths"] = {k: str(out / k) for k in ("data", "results", "figures", "tables", "logs")}
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
        "tables/dataset_stats.tex",
        "tables/model_accuracy.tex",
        "results/metrics/model_accuracy.json",
        "results/trace/summary.json",
        "figures/fig1_mllm_vs_llm_toy-llava.pdf",
        "figures/trace_avg_single_toy-llava_w3.png",
        "figures/trace_avg_multi_toy-phi_w3.pdf",
        "figures/trace_avg_llm_toy-llm_w3.pdf",
        "figures/trace_examples_toy-phi.png",
    ):
        assert (out / rel).stat().st_size > 0, rel
    assert list((out / "logs" / "benchmarks").glob("train_mllm_*.tsv"))


def test_second_run_does_nothing(run):
    repo, _, cfg_file = run
    proc = snakemake(repo, "--configfile", str(cfg_file), "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_regenerated_figures_and_tables_are_byte_identical(run):
    repo, out, cfg_file = run
    targets = sorted((out / "figures").glob("*")) + sorted((out / "tables").glob("*.tex"))
    before = {p: p.read_bytes() for p in targets}
    shutil.rmtree(out / "figures")
    shutil.rmtree(out / "tables")
    proc = snakemake(repo, "figures", "tables", "--configfile", str(cfg_file))
    assert proc.returncode == 0, proc.stderr[-4000:]
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p.name} differs after regeneration"
