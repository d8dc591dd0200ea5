"""`snakemake robustness` plans one nested run per seed other than the run's own: the run's own
seed is the run itself (its claims), not a second copy of it."""

from __future__ import annotations

import re

import yaml
from support.workflow import snakemake


def test_the_runs_own_seed_is_the_run(repo_root, tmp_path):
    paths = {k: str(tmp_path / k) for k in ("data", "results", "figures", "tables", "logs")}
    cfg = tmp_path / "overlay.yaml"
    cfg.write_text(yaml.safe_dump({"seed": 7, "robustness": {"seeds": [5, 7, 9]}, "paths": paths}))
    proc = snakemake(repo_root, "robustness", "-n", "--nolock", "--configfile", cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    nested = sorted(int(s) for s in re.findall(r"wildcards: seed=(\d+)", text))
    assert nested == [5, 9]
    assert re.search(r"rule claims:", text)  # the run's own claims are made, and pooled
