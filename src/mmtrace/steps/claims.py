"""rules/claims.smk: the claims table (`mmtrace.verdicts`) and the reproduction check."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.io import read_json, write_json, write_text

log = logging.getLogger(__name__)


def claims(
    *,
    roles: dict,
    controls: dict,
    rules: dict,
    accuracy: Path,
    trace_summary: Path,
    attention_summary: Path,
    ablation_summary: Path,
    edit_summary: Path,
    validation_summary: list[Path],
    robustness: list[Path],
    seed: int,
    claims: Path,
    markdown: Path,
) -> None:
    """Decide every claim by the config's rules; write results/claims.json (rows, rules and
    the key statistics `verify` compares) and its Markdown table. Each row carries the verdicts
    of the committed multi-seed run (`robustness`, where configured) and what makes it fragile."""
    from mmtrace.report.claims import markdown as render
    from mmtrace.verdicts.claims import decide, mark_seeds
    from mmtrace.verdicts.evidence import Evidence
    from mmtrace.verdicts.reproduction import key_statistics

    ev = Evidence.load(
        roles,
        controls,
        accuracy=accuracy,
        trace=trace_summary,
        attention=attention_summary,
        ablation=ablation_summary,
        editing=edit_summary,
        validation=validation_summary[0] if validation_summary else None,
    )
    settings = config.Claims(**rules)
    rows = decide(ev, settings)
    mark_seeds(rows, read_json(robustness[0]) if robustness else None, seed)
    for row in rows:
        log.info("%s / %s: %s (%s)", row.claim, row.model, row.verdict, row.reason)
    out = {
        "rules": settings.model_dump(),
        "rows": [r.as_dict() for r in rows],
        "statistics": key_statistics(ev, rows),
    }
    write_json(claims, out)
    write_text(markdown, render(read_json(claims)))


def claims_on_controls(
    *,
    roles: dict,
    controls: dict,
    rules: dict,
    expect: dict,
    accuracy: Path,
    trace_summary: Path,
    attention_summary: Path,
    ablation_summary: Path,
    edit_summary: Path,
    result: Path,
    markdown: Path,
) -> None:
    """Every claim rule decided on every control (`mmtrace.verdicts.on_controls`)."""
    from mmtrace.verdicts.evidence import Evidence
    from mmtrace.verdicts.on_controls import markdown as render
    from mmtrace.verdicts.on_controls import on_controls

    ev = Evidence.load(
        roles,
        controls,
        accuracy=accuracy,
        trace=trace_summary,
        attention=attention_summary,
        ablation=ablation_summary,
        editing=edit_summary,
    )
    out = on_controls(ev, config.Claims(**rules), expect)
    log.info("claim rules on the controls: %d of %d agree", out["agree"], out["scored"])
    for broken in out["broken"]:
        log.warning("contradicted by its control: %s", broken)
    write_json(result, out)
    write_text(markdown, render(out))


def table_claims(*, claims: Path, table: Path) -> None:
    from mmtrace.report.claims import table_claims as render

    write_text(table, render(read_json(claims)))


class ReproductionError(RuntimeError):
    """A run disagrees with the reference beyond the tolerances (names every differing number)."""


def verify(*, claims: Path, reference: Path, settings: dict, reproduction: Path) -> None:
    """Compare a run's key statistics with the committed reference; write the report, and fail
    naming every number (and verdict) that differs beyond its tolerance."""
    from mmtrace.verdicts.reproduction import compare, failures, fragile_rows, report

    if not reference.is_file():
        raise FileNotFoundError(
            f"{reference}: no reference to verify against (config verify.reference); a "
            "finished run's results/claims.json is one"
        )
    cfg = config.Verify(**settings)
    run, ref = read_json(claims), read_json(reference)
    comparisons = compare(run["statistics"], ref["statistics"], cfg, fragile_rows(run, ref))
    text = report(comparisons, cfg, str(reference))
    write_text(reproduction, text)
    failed = failures(comparisons, cfg)
    log.info("verify: %d of %d statistics agree", len(comparisons) - len(failed), len(comparisons))
    if failed:
        log.error("the reproduction report (Snakemake removes a failed job's output):\n%s", text)
        for c in failed:
            log.error("differs: %s (reference %s, this run %s)", c.name, c.reference, c.run)
        names = ", ".join(c.name for c in failed[:20])
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        raise ReproductionError(
            f"{len(failed)} statistic(s) differ from {reference} beyond tolerance: "
            f"{names}{more} (the full report is in this job's log)"
        )


def robustness_seed(*, seed: int, workflow_config: dict, threads: int, claims: Path) -> None:
    """One complete run of the workflow with `seed`, under the folder of `claims`
    (results/robustness/seed_<s>/results/claims.json): a nested Snakemake on this run's own
    config with the seed and the paths replaced, up to its claims."""
    import subprocess
    import sys

    import yaml

    from mmtrace.models import shipped

    base = claims.parent.parent
    cfg = {
        **workflow_config,
        "seed": int(seed),
        "paths": {
            "data": str(base / "data"),
            "results": str(base / "results"),
            "figures": str(base / "figures"),
            "tables": str(base / "paper_tables"),
            "logs": str(base / "logs"),
            "checkpoints": workflow_config["paths"]["checkpoints"],
        },
    }
    # another seed draws another world: its models are trained in the nested run; the shipped
    # checkpoints serve the seed (and settings) they were trained with
    if cfg.get("world") == "toy" and cfg.get("toy_models") == "shipped":
        try:
            checkpoints = Path(cfg["paths"]["checkpoints"])
            shipped.check_config(shipped.read_manifest(checkpoints), cfg, checkpoints)
        except shipped.ShippedError:
            cfg["toy_models"] = "train"
    log.info("seed %d: toy models %s", seed, cfg.get("toy_models"))
    base.mkdir(parents=True, exist_ok=True)
    cfg_file = base / "config.yaml"
    write_text(cfg_file, yaml.safe_dump(cfg, sort_keys=True))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(threads),
        "--nolock",
        "--configfile",
        str(cfg_file),
        "--",
        "claims",
    ]
    log.info("seed %d: %s", seed, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log.info("%s", proc.stdout[-4000:] + proc.stderr[-8000:])
    if proc.returncode != 0 or not claims.is_file():
        raise RuntimeError(
            f"the seed-{seed} run failed (exit {proc.returncode}); its logs are in {base / 'logs'}"
        )


def robustness(*, seed_claims: list[Path], seeds: list, pooled: Path, markdown: Path) -> None:
    """Pool the seeds' claims: each claim's verdict per seed, and `unstable` where they differ."""
    from mmtrace.verdicts.robustness import markdown as render
    from mmtrace.verdicts.robustness import pool

    out = pool({int(s): read_json(p) for s, p in zip(seeds, seed_claims, strict=True)})
    for r in out["rows"]:
        log.info("%s / %s: %s %s", r["claim"], r["model"], r["pooled"], r["verdicts"])
    write_json(pooled, out)
    write_text(markdown, render(out))
