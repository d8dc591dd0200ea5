"""Sanity checks on the artefacts of a CI workflow run.

Usage: python .ci/check_outputs.py OUT_DIR   (e.g. ci_out)

Prints one line per check and finishes with ``N passed, M failed``; exits 1 if any
check failed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _split_records(obj: object) -> Iterator[dict]:
    """Yield every dict below ``obj`` that carries both ``n`` and ``accuracy``."""
    if isinstance(obj, dict):
        if "n" in obj and "accuracy" in obj:
            yield obj
            return
        for value in obj.values():
            yield from _split_records(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _split_records(value)


def _models(data: object) -> dict[str, list[dict]]:
    """Map model name -> its split records, for the layouts the report may use.

    Accepted: ``{model: {split: {n, accuracy, ...}}}`` (optionally wrapped in a
    ``"models"`` key, optionally with a ``"splits"`` level), or a list of records
    each naming its ``model``.
    """
    if isinstance(data, dict) and isinstance(data.get("models"), (dict, list)):
        data = data["models"]
    models: dict[str, list[dict]] = {}
    if isinstance(data, dict):
        for name, value in data.items():
            records = list(_split_records(value))
            if records:
                models[str(name)] = records
    elif isinstance(data, list):
        for record in _split_records(data):
            models.setdefault(str(record.get("model", "?")), []).append(record)
    return models


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _valid(record: dict) -> bool:
    n, acc = record.get("n"), record.get("accuracy")
    return _is_number(n) and n > 0 and _is_number(acc) and 0.0 <= acc <= 1.0


def check_accuracy_json(path: Path) -> str:
    if not path.is_file():
        raise AssertionError(f"missing {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{path} is not valid JSON: {exc}") from exc
    models = _models(data)
    if not models:
        raise AssertionError(f"{path}: no split records with 'n' and 'accuracy' found")
    good = [name for name, records in models.items() if all(_valid(r) for r in records)]
    if not good:
        raise AssertionError(
            f"{path}: no model whose splits all have n>0 and 0<=accuracy<=1 "
            f"(models: {', '.join(sorted(models))})"
        )
    bad = [
        f"{name}: n={r.get('n')} accuracy={r.get('accuracy')}"
        for name, records in models.items()
        for r in records
        if _is_number(r.get("n"))
        and r["n"] > 0
        and not (_is_number(r.get("accuracy")) and 0.0 <= r["accuracy"] <= 1.0)
    ]
    if bad:
        raise AssertionError(f"{path}: accuracy outside [0, 1]: {'; '.join(bad)}")
    return f"{len(models)} model(s), valid: {', '.join(sorted(good))}"


def check_tex_table(path: Path) -> str:
    if not path.is_file():
        raise AssertionError(f"missing {path}")
    text = path.read_text(encoding="utf-8")
    if "\\toprule" not in text:
        raise AssertionError(f"{path} has no \\toprule")
    return f"{len(text.splitlines())} lines"


def check_magic(path: Path, magic: bytes) -> str:
    if not path.is_file():
        raise AssertionError(f"missing {path}")
    with path.open("rb") as fh:
        head = fh.read(len(magic))
    if head != magic:
        raise AssertionError(f"{path} does not start with {magic!r} (got {head!r})")
    return f"{path.stat().st_size} bytes"


def _summary(path: Path) -> dict:
    """A workflow summary JSON with at least one model in it."""
    if not path.is_file():
        raise AssertionError(f"missing {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not data:
        raise AssertionError(f"{path}: no model")
    return data


def check_trace_summary(path: Path) -> str:
    """Every model has traces, with finite p_clean/p_corr and a peak layer."""
    data = _summary(path)
    counts = {}
    for model, splits in data.items():
        n = 0
        for split, entry in splits.items():
            for setting, kinds in entry["traces"].items():
                for kind, windows in kinds.items():
                    for w in windows.values():
                        where = f"{model}/{split}/{setting}/{kind}/window {w['window']}"
                        if not (_is_number(w["mean_p_clean"]) and _is_number(w["mean_p_corr"])):
                            raise AssertionError(f"{path}: {where}: p_clean/p_corr not finite")
                        if not isinstance(w["peak_layer_at_constraint"], int):
                            raise AssertionError(f"{path}: {where}: no peak layer")
                        n += w["n_traced"]
        if n == 0:
            raise AssertionError(f"{path}: {model} has no traced question")
        counts[model] = n
    return ", ".join(f"{m}: {n} traces" for m, n in sorted(counts.items()))


def check_attention_summary(path: Path) -> str:
    """Every model has per-split constraint curves; every MLLM a finite Fig. 5 concentration."""
    data = _summary(path)
    notes = []
    for model, entry in data.items():
        splits = entry["splits"]
        if "all" not in splits or len(splits) < 2:
            raise AssertionError(f"{path}: {model} has no per-split entries")
        for split, e in splits.items():
            if "failure_prediction" not in e or "constraint_to_last" not in e:
                raise AssertionError(f"{path}: {model}/{split}: missing analyses")
            visual = e.get("visual")
            if visual and visual.get("n") == 0 and visual.get("n_zero_contribution", 0) > 0:
                # every contribution is exactly 0 (the route-cut control: the constraint
                # cannot see the image), so there is no share to concentrate: a finding
                notes.append(f"{model}/{split}: all {visual['n_zero_contribution']} zero")
                continue
            conc = (visual or {}).get("concentration", {}).get("mean")
            if visual is not None and not (_is_number(conc) and 0 < conc <= 1):
                raise AssertionError(f"{path}: {model}/{split}: concentration {conc}")
        notes.append(f"{model}: n={splits['all']['n']}")
    return ", ".join(sorted(notes))


def check_ablation_summary(path: Path) -> str:
    """Every MLLM has, per split and way, a drop per k for each ranking and the p-values."""
    data = _summary(path)
    for model, entry in data.items():
        for split, e in entry["splits"].items():
            for way in entry["ways"] if e["n"] else []:
                g = e[way]
                for ranking in ("top", "random", "bottom"):
                    drops = g[ranking]["drop_p_answer"]
                    if len(drops) != len(g["k"]) or not all(_is_number(d) for d in drops):
                        raise AssertionError(f"{path}: {model}/{split}/{way}/{ranking}")
                if not all(0 <= p <= 1 for p in g["p_value_top_vs_random"]):
                    raise AssertionError(f"{path}: {model}/{split}/{way}: bad p-values")
    return ", ".join(f"{m}: n={e['splits']['all']['n']}" for m, e in sorted(data.items()))


def check_editing_summary(path: Path) -> str:
    """Every MLLM has, per scenario, the three methods with finite metric means in [0, 1]."""
    data = _summary(path)
    notes = []
    for model, entry in data.items():
        for scenario, e in entry["scenarios"].items():
            if not e["n"]:
                continue
            for method in ("multedit", "finetune", "finetune_constrained"):
                eff = e[method]["efficacy"].get("mean")
                if not (_is_number(eff) and 0 <= eff <= 1):
                    raise AssertionError(f"{path}: {model}/{scenario}/{method}: efficacy {eff}")
            notes.append(f"{model}/{scenario}: n={e['n']}")
    if not notes:
        raise AssertionError(f"{path}: no edit was made")
    return ", ".join(sorted(notes))


def check_figures(folder: Path) -> str:
    """Every figure is a readable PDF with its PNG twin."""
    pdfs = sorted(folder.glob("*.pdf"))
    if not pdfs:
        raise AssertionError(f"no PDF in {folder}")
    for pdf in pdfs:
        check_magic(pdf, b"%PDF")
        check_magic(pdf.with_suffix(".png"), PNG_SIGNATURE)
    return f"{len(pdfs)} figures (PDF + PNG)"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    checks: list[tuple[str, Callable[[], str]]] = [
        (
            "results/metrics/model_accuracy.json",
            lambda: check_accuracy_json(out / "results/metrics/model_accuracy.json"),
        ),
        (
            "paper_tables/dataset_stats.tex",
            lambda: check_tex_table(out / "paper_tables/dataset_stats.tex"),
        ),
        (
            "paper_tables/model_accuracy.tex",
            lambda: check_tex_table(out / "paper_tables/model_accuracy.tex"),
        ),
        (
            "results/trace/summary.json",
            lambda: check_trace_summary(out / "results/trace/summary.json"),
        ),
        (
            "results/attention/summary.json",
            lambda: check_attention_summary(out / "results/attention/summary.json"),
        ),
        (
            "results/ablation/summary.json",
            lambda: check_ablation_summary(out / "results/ablation/summary.json"),
        ),
        (
            "results/editing/summary.json",
            lambda: check_editing_summary(out / "results/editing/summary.json"),
        ),
        (
            "paper_tables/editing.tex",
            lambda: check_tex_table(out / "paper_tables/editing.tex"),
        ),
        ("figures/*.pdf, *.png", lambda: check_figures(out / "figures")),
        (
            "figures/toy_world_examples.pdf",
            lambda: check_magic(out / "figures/toy_world_examples.pdf", b"%PDF"),
        ),
        (
            "figures/toy_world_examples.png",
            lambda: check_magic(out / "figures/toy_world_examples.png", PNG_SIGNATURE),
        ),
    ]
    passed = failed = 0
    for name, check in checks:
        try:
            detail = check()
        except Exception as exc:  # report every check, even on unexpected errors
            failed += 1
            print(f"FAIL {name}: {exc}")
        else:
            passed += 1
            print(f"ok   {name}: {detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
