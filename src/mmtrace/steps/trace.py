"""rules/trace.smk: MultiModalCausalTrace per model, split and shard, its summary and Figs. 1, 3
and 4/12."""

from __future__ import annotations

from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions
from mmtrace.io import read_json, write_json
from mmtrace.steps.common import model_job, read_scores, shard_of


def trace_shard(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csv: Path,
    pool: list[Path],
    scores: Path,
    prompts: dict,
    tracing: dict,
    seed: int,
    shard: int,
    threads: int,
    trace: Path,
) -> None:
    """Trace one shard of one split for one model (MultiModalCausalTrace, docs/method.md §4);
    `pool`: every split of the world, whose names the natural corruption draws from."""
    from mmtrace.tracing import study

    settings = config.Tracing(**tracing)
    loaded = model_job(model, checkpoint, spec, threads)
    records = load_questions([csv])
    if not loaded.is_multimodal:
        records = [r for r in records if r.constraint_type == "single"]
    records = shard_of(records, shard, settings.shards, settings.max_questions)
    correct = {qid: row["correct"] for qid, row in read_scores(scores).items()}
    result = study.trace_records(
        loaded,
        records,
        correct,
        config.Prompts(**prompts),
        csv.parent,
        settings,
        seed,
        world=load_questions(pool),
    )
    write_json(trace, {"model": model, "split": csv.stem, "shard": shard, **result})


def trace_summary(*, shards: list[Path], summary: Path) -> None:
    """Per model, split, setting, kind and window: counts, p_clean/p_corr and the peak layer."""
    from mmtrace.tracing.study import summarise

    write_json(summary, summarise([read_json(p) for p in shards]))


def _traces(shards: list[Path]) -> list[dict]:
    return [t for p in shards for t in read_json(p)["traces"]]


def fig_trace_average(
    *, shards: list[Path], model: str, setting: str, window: int, kinds: list[str], pdf: Path
) -> None:
    """Figs. 3 and 4/12 (and the LLM's average): mean IE per token role and layer."""
    from mmtrace.report.traces import fig_average

    fig_average(_traces(shards), setting, window, kinds, model, pdf.with_suffix(""))


def fig_trace_examples(
    *, shards: list[Path], model: str, window: int, kinds: list[str], k: int, pdf: Path
) -> None:
    """Per-question heatmaps of `k` traced questions per split."""
    from mmtrace.report.traces import fig_examples

    fig_examples(_traces(shards), "single", window, kinds, k, model, pdf.with_suffix(""))


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
