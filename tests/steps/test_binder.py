"""The binder that maps a Snakemake job onto a step's keyword arguments, with Snakemake's own
containers (what a rule's script receives)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Namedlist

from mmtrace.steps import BindError, bind, run


def _job(**spaces):
    base = {k: Namedlist(fromdict=spaces.get(k, {})) for k in ("input", "output", "params")}
    base["wildcards"] = Namedlist(fromdict=spaces.get("wildcards", {}))
    return SimpleNamespace(rule="some_rule", threads=spaces.get("threads", 3), log=[], **base)


def step(*, csvs: list[Path], model: str, shard: int, spec: dict, out: Path, threads: int):
    return dict(csvs=csvs, model=model, shard=shard, spec=spec, out=out, threads=threads)


def test_binds_by_name_and_converts_by_annotation():
    job = _job(
        input={"csvs": ["a.csv", "b.csv"]},
        output={"out": "x/y.json"},
        params={"spec": {"role": "mllm"}},
        wildcards={"model": "toy", "shard": "2"},
    )
    kwargs = bind(job, step)
    assert kwargs == dict(
        csvs=[Path("a.csv"), Path("b.csv")],
        model="toy",
        shard=2,
        spec={"role": "mllm"},
        out=Path("x/y.json"),
        threads=3,
    )
    assert isinstance(kwargs["shard"], int) and isinstance(kwargs["out"], Path)


def test_a_name_in_two_places_is_an_error():
    job = _job(
        input={"csvs": [], "model": "m/training_log.json"},
        output={"out": "o"},
        params={"spec": {}},
        wildcards={"model": "toy", "shard": "0"},
    )
    with pytest.raises(BindError, match="'model' is both in input and wildcards"):
        bind(job, step)


def test_a_missing_name_is_an_error_that_names_rule_and_parameter():
    job = _job(input={"csvs": []}, output={"out": "o"}, wildcards={"model": "m", "shard": "0"})
    with pytest.raises(BindError, match=r"rule some_rule: .*needs 'spec'"):
        bind(job, step)


def test_defaults_fill_what_the_job_lacks():
    def with_default(*, out: Path, extra: Path | None = None, n: int = 5):
        return out, extra, n

    assert bind(_job(output={"out": "o"}), with_default) == {"out": Path("o")}
    kwargs = bind(_job(output={"out": "o"}, input={"extra": "e"}), with_default)
    assert kwargs == {"out": Path("o"), "extra": Path("e")}


def test_run_logs_to_the_rules_log_file(tmp_path):
    seen = {}

    def logged(*, out: Path):
        import logging

        logging.getLogger("mmtrace.test").info("writing %s", out)
        seen["out"] = out

    job = _job(output={"out": "o"})
    job.log = [str(tmp_path / "job.log")]
    run(job, logged)
    assert seen["out"] == Path("o")
    assert "writing o" in (tmp_path / "job.log").read_text()
