"""rules/trace.smk: MultiModalCausalTrace per model, split and shard, its summary and Figs. 1, 3
and 4/12."""

from __future__ import annotations

from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json
from mmtrace.steps.common import model_job, read_scores, shard_of, templates_for


def trace_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    pool: list[Path],
    scores: Path,
    prompts: dict,
    tracing: dict,
    seed: int,
    shard: int,
    threads: int,
    trace: list[Path],
) -> None:
    """Trace one shard of each analysed split (`csvs`, one output each in `trace`) for one model
    (MultiModalCausalTrace, docs/method.md §4), the model loaded once; `pool`: every split of the
    world, whose names the natural corruption draws from."""
    from mmtrace.tracing import study

    settings = config.Tracing(**tracing)
    loaded = model_job(model, checkpoint, spec, threads)
    correct = {qid: row["correct"] for qid, row in read_scores(scores).items()}
    world = load_questions(pool)
    for csv, out in zip(csvs, trace, strict=True):
        records = load_questions([csv])
        if not loaded.is_multimodal:
            records = [r for r in records if r.constraint_type == "single"]
        records = shard_of(records, shard, settings.shards, settings.max_questions)
        result = study.trace_records(
            loaded,
            records,
            correct,
            templates_for(loaded, prompts),
            csv.parent,
            settings,
            seed,
            world=world,
        )
        write_json(out, {"model": model, "split": csv.stem, "shard": shard, **result})


def trace_summary(*, shards: list[Path], summary: Path) -> None:
    """Per model, split, setting, kind and window: counts, p_clean/p_corr and the peak layer."""
    from mmtrace.tracing.study import summarise

    write_json(summary, summarise([read_json(p) for p in shards]))


def _traces(shards: list[Path]) -> list[dict]:
    return [t for p in shards for t in read_json(p)["traces"]]


def fig_trace_mllm(
    *,
    shards: list[Path],
    model: str,
    windows: list[int],
    multi_window: int,
    kinds: list[str],
    example_window: int,
    example_kinds: list[str],
    k: int,
    single: list[Path],
    multi: Path,
    examples: Path,
) -> None:
    """An MLLM's trace figures in one job (its shards read once): Fig. 3 per window (single
    constraint), Figs. 4/12 (multi) and the per-question heatmaps of `k` questions per split."""
    from mmtrace.report.traces import fig_average, fig_examples

    traces = _traces(shards)
    for window, pdf in zip(windows, single, strict=True):
        fig_average(traces, "single", window, kinds, model, pdf.with_suffix(""))
    fig_average(traces, "multi", multi_window, kinds, model, multi.with_suffix(""))
    stem = examples.with_suffix("")
    fig_examples(traces, "single", example_window, example_kinds, k, model, stem)


def fig_trace_llm(
    *, shards: list[Path], model: str, window: int, kinds: list[str], average: Path
) -> None:
    """An LLM's averaged trace: its textual questions, corrupted at the entity's name."""
    from mmtrace.report.traces import fig_average

    fig_average(_traces(shards), "llm", window, kinds, model, average.with_suffix(""))


def fig_mllm_vs_llm(
    *,
    mllm_shards: list[Path],
    llm_shards: list[Path],
    model: str,
    llm: str,
    window: int,
    pdf: Path,
) -> None:
    """Fig. 1: one question's MLLM trace beside its LLM counterpart's."""
    from mmtrace.report.traces import fig_mllm_vs_llm as draw

    traces = [t for t in _traces(mllm_shards) if t["setting"] == "single" and t["window"] == window]
    draw(traces, _traces(llm_shards), model, llm, pdf.with_suffix(""))
