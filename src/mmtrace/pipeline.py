"""The workflow's steps as plain functions (paths and config sections in, files out).

Snakemake's scripts in rules/scripts/ only unpack their job and call one of these, so every step
can be run and tested without Snakemake.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json, write_text

log = logging.getLogger(__name__)


def make_toy_world(out_dir: Path, seed: int, world: dict) -> None:
    from mmtrace.toyworld.generate import generate

    counts = generate(out_dir, seed=seed, **config.ToyWorld(**world).model_dump())
    log.info("toy world written to %s: %s", out_dir, counts)


def train_tokenizer(
    csvs: list[Path], world_json: Path, cfg: dict, prompts: dict, out_file: Path
) -> None:
    from mmtrace.models import train

    records = load_questions(csvs)
    entities = [e for e in train.load_entities(world_json) if not e["held_out"]]
    train.train_tokenizer(
        records,
        entities,
        config.Prompts(**prompts),
        config.TokenizerCfg(**cfg).vocab_size,
        out_file.parent,
    )


def train_vision(cfg: dict, image_size: int, seed: int, threads: int, out_file: Path) -> None:
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_vision(config.VisionCfg(**cfg), image_size, seed, out_file.parent)


def train_text_model(
    name: str,
    csvs: list[Path],
    tokenizer_file: Path,
    cfg: dict,
    prompts: dict,
    seed: int,
    threads: int,
    out_file: Path,
) -> None:
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_text_model(
        config.TextModelCfg(**cfg),
        load_questions(csvs),
        config.Prompts(**prompts).llm,
        tokenizer_file.parent,
        seed,
        name,
        out_file.parent,
    )


def train_mllm(
    name: str,
    csvs: list[Path],
    world_json: Path,
    data_dir: Path,
    vision_file: Path,
    text_file: Path,
    cfg: dict,
    prompts: dict,
    seed: int,
    threads: int,
    out_file: Path,
) -> None:
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_mllm(
        config.MLLMCfg(**cfg),
        load_questions(csvs),
        train.load_entities(world_json),
        config.Prompts(**prompts),
        data_dir,
        vision_file.parent,
        text_file.parent,
        seed,
        name,
        out_file.parent,
    )


def _load_model(name: str, model_dir: Path, spec: dict):
    """Load a model as its `models:` config entry says (role, dtype, device, adapter, remote
    code). A hub model is read from the pinned snapshot that `fetch_model` recorded, offline."""
    from mmtrace.models.loading import load

    spec = config.ModelSpec(**spec)
    path = model_dir
    if spec.source == "hub":
        from mmtrace.models.hub import read_marker

        path = read_marker(model_dir / "snapshot.json")
    return load(
        path,
        spec.role,
        name=name,
        dtype=spec.dtype,
        device=spec.device,
        trust_remote_code=spec.trust_remote_code,
        adapter=spec.adapter,
    )


def _model_job(name: str, model_dir: Path, spec: dict, threads: int):
    """A model job's start: its torch threads, then the model as its config entry says."""
    import torch

    torch.set_num_threads(threads)
    return _load_model(name, model_dir, spec)


def _shard(records: list, limit: int | None, shard: int, shards: int) -> list:
    """The first `limit` items (all if None), then this job's share of them."""
    from mmtrace.tracing.study import shard_of

    return shard_of(records if limit is None else records[:limit], shard, shards)


def evaluate_model(
    name: str,
    model_dir: Path,
    spec: dict,
    csvs: list[Path],
    data_dir: Path,
    prompts: dict,
    batch_size: int,
    threads: int,
    scores_out: Path,
    summary_out: Path,
    human_answers: list[Path] = (),
) -> None:
    """Score every question (first answer token); where annotators' answers are given (OK-VQA
    in the paper world), also the VQA accuracy of the model's generated answer."""
    from mmtrace.evaluate import score_questions, summarise, vqa_accuracies
    from mmtrace.io import atomic_open

    loaded = _model_job(name, model_dir, spec, threads)
    records = load_questions(csvs)
    rows = score_questions(loaded, records, config.Prompts(**prompts), data_dir, batch_size)
    human: dict[str, list[str]] = {}
    for path in human_answers:
        human.update(read_json(path))
    if human:
        vqa = vqa_accuracies(loaded, records, config.Prompts(**prompts), data_dir, human)
        for r in rows:
            r.update(vqa.get(r["qid"], {}))
    with atomic_open(scores_out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    summary = {"role": loaded.role, "splits": summarise(rows)}
    for split, s in summary["splits"].items():
        log.info(
            "%s %s: n=%d accuracy=%.3f mean p(answer)=%.3f%s",
            name,
            split,
            s["n"],
            s["accuracy"],
            s["mean_p_answer"],
            f" VQA accuracy={s['vqa_accuracy']:.3f}" if "vqa_accuracy" in s else "",
        )
    write_json(summary_out, summary)


def merge_accuracy(summaries: list[Path], out: Path) -> None:
    write_json(out, {Path(p).stem: read_json(p) for p in summaries})


def toy_world_examples(csvs: list[Path], data_dir: Path, seed: int, pdf: Path) -> None:
    from mmtrace.report.examples import toy_world_examples as draw

    draw(data_dir, load_questions(csvs), pdf.with_suffix(""), seed=seed)


def table_dataset_stats(csvs: list[Path], out: Path) -> None:
    from mmtrace.report.tables import render_dataset_stats

    write_text(out, render_dataset_stats(load_questions(csvs)))


def table_model_accuracy(accuracy_json: Path, out: Path) -> None:
    from mmtrace.report.tables import render_model_accuracy

    write_text(out, render_model_accuracy(read_json(accuracy_json)))


def _scores(path: Path) -> dict[str, dict]:
    """The evaluation's per-question rows, by question id."""
    with open(path, encoding="utf-8") as fh:
        return {row["qid"]: row for row in map(json.loads, fh)}


def trace_shard(
    name: str,
    model_dir: Path,
    spec: dict,
    csv: Path,
    scores: Path,
    data_dir: Path,
    prompts: dict,
    tracing: dict,
    seed: int,
    shard: int,
    threads: int,
    out: Path,
) -> None:
    """Trace one shard of one split for one model (MultiModalCausalTrace, the paper's storage
    analysis: Figs. 1, 3, 4 and 12)."""

    from mmtrace.tracing import study

    cfg = config.Tracing(**tracing)
    loaded = _model_job(name, model_dir, spec, threads)
    records = load_questions([csv])
    if not loaded.is_multimodal:
        records = [r for r in records if r.constraint_type == "single"]
    records = _shard(records, cfg.max_questions, shard, cfg.shards)
    correct = {qid: row["correct"] for qid, row in _scores(scores).items()}
    result = study.trace_records(
        loaded, records, correct, config.Prompts(**prompts), data_dir, cfg, seed
    )
    split = csv.stem
    write_json(out, {"model": name, "split": split, "shard": shard, **result})


def trace_summary(shard_files: list[Path], out: Path) -> None:
    from mmtrace.tracing.study import summarise

    write_json(out, summarise([read_json(p) for p in shard_files]))


def _traces(shard_files: list[Path]) -> list[dict]:
    return [t for p in shard_files for t in read_json(p)["traces"]]


def fig_trace_average(
    shard_files: list[Path], model: str, setting: str, window: int, kinds: list[str], pdf: Path
) -> None:
    from mmtrace.report.traces import fig_average

    fig_average(_traces(shard_files), setting, window, kinds, model, pdf.with_suffix(""))


def fig_trace_examples(
    shard_files: list[Path], model: str, window: int, kinds: list[str], k: int, pdf: Path
) -> None:
    from mmtrace.report.traces import fig_examples

    fig_examples(_traces(shard_files), "single", window, kinds, k, model, pdf.with_suffix(""))


def fig_mllm_vs_llm(
    mllm_files: list[Path], llm_files: list[Path], mllm: str, llm: str, window: int, pdf: Path
) -> None:
    from mmtrace.report.traces import fig_mllm_vs_llm as draw

    ts = [t for t in _traces(mllm_files) if t["setting"] == "single" and t["window"] == window]
    draw(ts, _traces(llm_files), mllm, llm, pdf.with_suffix(""))


def attention_shard(
    name: str,
    model_dir: Path,
    spec: dict,
    csv: Path,
    scores: Path,
    data_dir: Path,
    prompts: dict,
    attention: dict,
    shard: int,
    threads: int,
    out: Path,
) -> None:
    """The paper's Eq. 1 attention contributions (information transfer: Figs. 5 and 15-17) for
    one shard of one split."""
    from mmtrace.transfer import study

    cfg = config.Attention(**attention)
    loaded = _model_job(name, model_dir, spec, threads)
    records = study.eligible(load_questions([csv]), loaded.is_multimodal)
    records = _shard(records, cfg.max_questions, shard, cfg.shards)
    result = study.attention_records(
        loaded, records, _scores(scores), config.Prompts(**prompts), data_dir, cfg
    )
    write_json(out, {"model": name, "split": csv.stem, "shard": shard, **result})


def attention_summary(shard_files: list[Path], attention: dict, seed: int, out: Path) -> None:
    from mmtrace.transfer.study import summarise_attention

    summary = summarise_attention(
        [read_json(p) for p in shard_files], config.Attention(**attention), seed
    )
    for model, entry in summary.items():
        for split, e in entry["splits"].items():
            f = e["failure_prediction"]
            v = e.get("visual", {}).get("concentration")
            log.info(
                "%s %s: n=%d%s; AUROC %s",
                model,
                split,
                e["n"],
                f"; top-share concentration {v['mean']:.3f} (uniform {v['uniform']:.3f})"
                if v
                else "",
                f["skipped"]
                if "skipped" in f
                else f"contribution {f['contribution']['auroc']:.3f} vs confidence "
                f"{f['confidence']['auroc']:.3f} (DeLong p={f['difference']['delong_p']:.3g})",
            )
    write_json(out, summary)


def ablation_shard(
    name: str,
    model_dir: Path,
    spec: dict,
    csv: Path,
    scores: Path,
    data_dir: Path,
    prompts: dict,
    attention: dict,
    ablation: dict,
    seed: int,
    shard: int,
    threads: int,
    out: Path,
) -> None:
    """Visual-token ablation (our causal check of the few visual tokens that dominate in Fig. 5)
    for one shard of one split."""
    from mmtrace.transfer import study

    cfg = config.Ablation(**ablation)
    loaded = _model_job(name, model_dir, spec, threads)
    all_records = load_questions([csv])
    result = study.ablation_records(
        loaded,
        _shard(all_records, cfg.max_questions, shard, cfg.shards),
        _scores(scores),
        config.Prompts(**prompts),
        data_dir,
        config.Attention(**attention),
        cfg,
        study.mean_image_files(all_records, data_dir, cfg.mean_images),
        seed,
    )
    write_json(out, {"model": name, "split": csv.stem, "shard": shard, **result})


def ablation_summary(shard_files: list[Path], out: Path) -> None:
    from mmtrace.transfer.study import summarise_ablation

    summary = summarise_ablation([read_json(p) for p in shard_files])
    for model, entry in summary.items():
        for way in entry["ways"]:
            g = entry["splits"]["all"].get(way)
            if g:
                log.info(
                    "%s %s (all splits, n=%d): drop in p(answer) at k=%s: top %s, random %s, "
                    "bottom %s",
                    model,
                    way,
                    g["n"],
                    g["k"],
                    [round(x, 3) for x in g["top"]["drop_p_answer"]],
                    [round(x, 3) for x in g["random"]["drop_p_answer"]],
                    [round(x, 3) for x in g["bottom"]["drop_p_answer"]],
                )
    write_json(out, summary)


def fig_transfer(summary: Path, figure: str, model: str, pdf: Path) -> None:
    """One of the information-transfer figures, drawn from its summary."""
    from mmtrace.report import transfer

    draw = {
        "visual": transfer.fig_visual,
        "constraint": transfer.fig_constraint_to_last,
        "roc": transfer.fig_failure,
        "ablation": transfer.fig_ablation,
    }[figure]
    draw(read_json(summary), model, pdf.with_suffix(""))


def edit_shard(
    name: str,
    model_dir: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    data_dir: Path,
    prompts: dict,
    editing: dict,
    scenario: str,
    seed: int,
    shard: int,
    threads: int,
    out: Path,
) -> None:
    """MultEdit (the paper's editing method: Figs. 6 and 14) and the baselines on one shard of
    one scenario."""
    from mmtrace.editing import study

    cfg = config.Editing(**editing)
    loaded = _model_job(name, model_dir, spec, threads)
    records = load_questions(csvs)
    result = study.run_edits(
        loaded,
        scenario,
        _shard(study.cases(scenario, records, _scores(scores)), cfg.max_edits, shard, cfg.shards),
        records,
        config.Prompts(**prompts),
        data_dir,
        cfg,
        seed,
    )
    write_json(out, {"model": name, "shard": shard, **result})


def edit_sweep(
    name: str,
    model_dir: Path,
    spec: dict,
    csvs: list[Path],
    scores: Path,
    data_dir: Path,
    prompts: dict,
    editing: dict,
    seed: int,
    threads: int,
    out: Path,
) -> None:
    """Fig. 14's layer sweep and the clamp sweep, on the first error-correction questions."""
    from mmtrace.editing import study
    from mmtrace.tracing.modules import locate

    cfg = config.Editing(**editing)
    loaded = _model_job(name, model_dir, spec, threads)
    targets = study.cases("error_correction", load_questions(csvs), _scores(scores))
    targets = targets[: cfg.sweep_edits]
    layers = cfg.sweep_layers or list(range(len(locate(loaded.model))))
    write_json(
        out,
        study.sweeps(loaded, targets, config.Prompts(**prompts), data_dir, cfg, layers, seed),
    )


def edit_summary(shard_files: list[Path], sweep_files: list[Path], editing: dict, out) -> None:
    from mmtrace.editing.study import summarise_edits, summarise_sweep

    summary = summarise_edits([read_json(p) for p in shard_files], config.Editing(**editing))
    for p in sweep_files:
        sweep = read_json(p)
        summary.setdefault(sweep["model"], {"layer": sweep["layer"], "scenarios": {}})
        summary[sweep["model"]]["sweep"] = summarise_sweep(sweep)
    for model, entry in summary.items():
        for scenario, e in entry["scenarios"].items():
            for method in ("multedit", "finetune", "finetune_constrained"):
                if method in e:
                    m = e[method]
                    log.info(
                        "%s %s %s (n=%d): efficacy %.3f, generalisation %s, specificity %s",
                        model,
                        scenario,
                        method,
                        m["n"],
                        m["efficacy"]["mean"],
                        m["generalisation"].get("mean"),
                        m["specificity"].get("mean"),
                    )
    write_json(out, summary)


def fig_editing(summary: Path, trace_summary: Path, figure: str, model: str, pdf: Path) -> None:
    from mmtrace.report import editing

    if figure == "methods":
        editing.fig_methods(read_json(summary), model, pdf.with_suffix(""))
    else:
        editing.fig_layers(read_json(summary), read_json(trace_summary), model, pdf.with_suffix(""))


def table_editing(summary: Path, out: Path) -> None:
    from mmtrace.report.tables import render_editing

    write_text(out, render_editing(read_json(summary)))
