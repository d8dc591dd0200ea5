"""rules/evaluate.smk: which questions each model answers (top-1 first answer token)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mmtrace.dataset import load_questions
from mmtrace.io import atomic_open, read_json, write_json
from mmtrace.steps.common import model_job, templates_for

log = logging.getLogger(__name__)


def evaluate_model(
    *,
    model: str,
    checkpoint: Path,
    spec: dict,
    csvs: list[Path],
    human: list[Path],
    prompts: dict,
    batch_size: int,
    threads: int,
    scores: Path,
    summary: Path,
) -> None:
    """Score every question (first answer token); where annotators' answers are given (OK-VQA
    in the paper world), also the VQA accuracy of the model's generated answer. The hard split
    (F3b/F4's evaluation set) is scored too but summarised apart, under `hard`, so the accuracy
    table's splits stay the paper's."""
    from mmtrace.evaluate import score_questions, summarise, vqa_accuracies
    from mmtrace.toyworld.generate import HARD_SPLIT

    loaded = model_job(model, checkpoint, spec, threads)
    records = load_questions(csvs)
    templates = templates_for(loaded, prompts)
    data_dir = csvs[0].parent
    rows = score_questions(loaded, records, templates, data_dir, batch_size)
    answers: dict[str, list[str]] = {}
    for path in human:
        answers.update(read_json(path))
    if answers:
        vqa = vqa_accuracies(loaded, records, templates, data_dir, answers)
        for r in rows:
            r.update(vqa.get(r["qid"], {}))
    with atomic_open(scores, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    result = {
        "role": loaded.role,
        "splits": summarise([r for r in rows if r["split"] != HARD_SPLIT]),
    }
    hard = summarise([r for r in rows if r["split"] == HARD_SPLIT])
    if hard:
        result[HARD_SPLIT] = hard[HARD_SPLIT]
    for split, s in [*result["splits"].items(), *hard.items()]:
        log.info(
            "%s %s: n=%d accuracy=%.3f mean p(answer)=%.3f%s",
            model,
            split,
            s["n"],
            s["accuracy"],
            s["mean_p_answer"],
            f" VQA accuracy={s['vqa_accuracy']:.3f}" if "vqa_accuracy" in s else "",
        )
    write_json(summary, result)


def model_accuracy(*, summaries: list[Path], accuracy: Path) -> None:
    """Every model's accuracy summary in one file, by model name."""
    write_json(accuracy, {p.stem: read_json(p) for p in summaries})
