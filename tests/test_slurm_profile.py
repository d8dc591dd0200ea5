"""The SLURM profile and the GPU request: `use_gpu` and `gpu_model` in the workflow config decide
every job's GPU (none anywhere with `use_gpu: false`), the profile holds no GPU setting and only
placeholders a run refuses with a message naming what to set, and its memory and time are those
docs/paper-scale.md states. The profile on a real cluster is `.ci/run`'s Slurm stage
(.ci/slurm/)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from support.workflow import snakemake

from mmtrace.config import RESOURCE_RULES, job_resources, validate
from mmtrace.config.cluster import (
    WHERE,
    is_placeholder,
    placeholder_message,
    placeholder_problems,
)

# attention_shard_hard: attention_shard with the hard split (its resources are attention_shard's)
MODEL_RULES = {
    *RESOURCE_RULES,
    "train_vision",
    "train_text_model",
    "train_mllm",
    "attention_shard_hard",
}


@pytest.fixture()
def raw(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text())


@pytest.fixture()
def profile(repo_root):
    return yaml.safe_load((repo_root / "profiles" / "slurm" / "config.yaml").read_text())


def _resources(cfg: dict, rule: str) -> dict:
    return {k: v(None, 1) if callable(v) else v for k, v in job_resources(cfg, rule).items()}


@pytest.mark.parametrize("world", ["toy", "paper"])
def test_no_gpu_anywhere_without_use_gpu(raw, world):
    raw = copy.deepcopy(raw)
    raw["world"] = world
    raw["gpu_model"] = raw["paper"]["gpu_model"] = "a100"  # set, but no GPU is asked for
    raw["use_gpu"] = raw["paper"]["use_gpu"] = False
    cfg = validate(raw)
    for rule in RESOURCE_RULES:
        res = _resources(cfg, rule)
        assert res["gpu"] == 0 and "gpu_model" not in res, (world, rule, res)


def test_gpu_and_its_model_come_from_the_config(raw):
    raw = copy.deepcopy(raw)
    raw["world"] = "paper"
    raw["paper"]["gpu_model"] = "h100"
    res = _resources(validate(raw), "trace_shard")
    assert res["gpu"] == 1 and res["gpu_model"] == "h100"
    assert res["mem_mb"] == raw["paper"]["resources"]["trace_shard"]["mem_mb"]
    raw["paper"]["gpu_model"] = None  # any GPU: --gpus=1
    assert "gpu_model" not in _resources(validate(raw), "trace_shard")
    raw["paper"]["gpu_model"] = "a100:1"  # the count is not part of the type
    with pytest.raises(ValueError, match="gpu_model"):
        validate(raw)


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    else:
        yield path, node


def test_the_profile_sets_no_gpu_and_only_known_placeholders(profile):
    keys = {p[-1] for p, _ in _walk(profile)}
    assert not keys & {"gpu", "gpu_model", "gres", "gpus"}, keys
    placeholders = {v for _, v in _walk(profile) if is_placeholder(v)}
    assert placeholders == set(WHERE)
    assert set(profile["set-resources"]) == MODEL_RULES
    # docs/paper-scale.md "SLURM": 8 GB and 60 minutes for the jobs that are not model jobs; the
    # model jobs' memory and time are the workflow config's (a profile value would override them)
    assert profile["default-resources"]["mem_mb"] == 8000
    assert profile["default-resources"]["runtime"] == 60
    for rule, res in profile["set-resources"].items():
        assert set(res) == {"slurm_partition"}, rule


def test_placeholders_are_named_with_where_to_set_them():
    jobs = [
        ("toy_world", {"slurm_account": "your_account", "slurm_partition": "your_cpu_partition"}),
        ("trace_shard", {"slurm_account": "your_account", "slurm_partition": "your_gpu_partition"}),
        ("fig_transfer", {"slurm_account": "lab", "slurm_partition": "cpu", "mem_mb": 8000}),
    ]
    problems = placeholder_problems(jobs)
    assert len(problems) == 3
    text = placeholder_message(problems)
    assert "slurm_account='your_account' (rules: toy_world, trace_shard)" in text
    assert "default-resources: slurm_partition" in text and "&model_job" in text
    assert "profiles/slurm/config.yaml" in text
    assert not placeholder_problems(jobs[2:])


def _dry_run_resources(repo_root, tmp_path, overlay: dict) -> dict[str, list[str]]:
    """rule -> the resources line of each of its jobs, from a dry-run with the SLURM profile."""
    cfg = tmp_path / "overlay.yaml"
    # outputs under tmp_path: the plan is the whole workflow whatever this checkout has run
    paths = {k: str(tmp_path / k) for k in ("data", "results", "figures", "tables", "logs")}
    cfg.write_text(yaml.safe_dump({**overlay, "paths": paths}))
    proc = snakemake(
        repo_root, "-n", "--nolock", "--workflow-profile", "profiles/slurm", "--configfile", cfg
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, list[str]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif line.strip().startswith("resources:") and rule:
            out.setdefault(rule, []).append(line.strip())
    return out


def test_dry_run_with_the_profile_requests_gpus_only_with_use_gpu(repo_root, tmp_path):
    # with toy_models: train, so that the training rules are in the plan too
    without = _dry_run_resources(repo_root, tmp_path, {"gpu_model": "a100", "toy_models": "train"})
    assert set(without) >= MODEL_RULES and "toy_world" in without
    for lines in without.values():
        for line in lines:
            assert "gpu_model" not in line and not re.search(r"\bgpu=[1-9]", line), line
    with_gpu = _dry_run_resources(
        repo_root, tmp_path, {"use_gpu": True, "gpu_model": "a100", "toy_models": "train"}
    )
    for rule, lines in with_gpu.items():
        for line in lines:
            if rule in MODEL_RULES:
                assert "gpu=1" in line and "gpu_model=a100" in line, line
                assert "slurm_partition=your_gpu_partition" in line, line
            else:
                assert "gpu_model" not in line and "slurm_partition=your_cpu_partition" in line


@pytest.mark.parametrize(("value", "gpus"), [("true", True), ("false", False), ("True", True)])
def test_use_gpu_from_the_command_line_as_users_type_it(repo_root, value, gpus):
    """`snakemake --config use_gpu=true` (Snakemake hands over the string "true") is accepted
    and switches every model job's GPU request; the file's strict types are unchanged."""
    proc = snakemake(repo_root, "-n", "--nolock", "--config", f"use_gpu={value}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    assert ("gpu=1" in text) is gpus
