"""Model accuracy: top-1 first answer token, and p(answer).

A question counts as answered when the model's top-1 next token after the prompt is the first
token of one of its acceptable answers; p(answer) sums the probability of those first tokens.
MLLMs answer the image questions (on renderings never used in training), text-only models the
textual counterparts. Where a split has its annotators' answers (OK-VQA in the paper world), the
model's generated short answer is also scored with the official VQA accuracy.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from mmtrace import prompts as P
from mmtrace.dataset import QuestionRecord
from mmtrace.logs import progress
from mmtrace.models.loading import LoadedModel, load_image
from mmtrace.models.scoring import first_answer_token, next_token_probs

log = logging.getLogger(__name__)


def score_questions(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    templates,
    data_dir: Path,
    batch_size: int = 64,
) -> list[dict]:
    """One row per question: correct, p_answer, confidence, the predicted token."""
    rows = []
    template = templates.mllm if loaded.is_multimodal else templates.llm
    for start in progress(range(0, len(records), batch_size), desc=f"scoring {loaded.name}"):
        chunk = records[start : start + batch_size]
        texts = [
            P.build(template, r.question if loaded.is_multimodal else r.text_question).text
            for r in chunk
        ]
        images = (
            [load_image(data_dir / r.image_url) for r in chunk] if loaded.is_multimodal else None
        )
        probs = next_token_probs(loaded, texts, images).cpu()
        top = probs.argmax(dim=-1)
        for r, text, pr, t in zip(chunk, texts, probs, top, strict=True):
            gold = sorted({first_answer_token(loaded.tokenizer, text, a) for a in r.answers})
            rows.append(
                {
                    "qid": r.qid,
                    "split": r.split,
                    "constraint_type": r.constraint_type,
                    "correct": int(t) in gold,
                    "p_answer": float(pr[gold].sum()),
                    # p of the model's own top-1 token: a confidence that needs no gold answer
                    "confidence": float(pr[t]),
                    "predicted": loaded.tokenizer.convert_ids_to_tokens(int(t)),
                }
            )
    return rows


def vqa_accuracies(
    loaded: LoadedModel,
    records: list[QuestionRecord],
    templates,
    data_dir: Path,
    human: dict[str, list[str]],
    max_new_tokens: int = 10,
) -> dict[str, dict]:
    """OK-VQA's official metric on the model's own short answer: greedy decoding of up to
    `max_new_tokens` tokens, cut at the first newline, scored by `realdata.vqa_accuracy`
    against the question's 10 annotator answers. qid -> {answer, vqa_accuracy}."""
    from mmtrace.realdata import vqa_accuracy

    template = templates.mllm if loaded.is_multimodal else templates.llm
    pad = loaded.tokenizer.pad_token_id
    out: dict[str, dict] = {}
    todo = [r for r in records if human.get(r.qid)]
    for r in progress(todo, desc=f"VQA accuracy {loaded.name}"):
        text = P.build(template, r.question if loaded.is_multimodal else r.text_question).text
        image = [load_image(data_dir / r.image_url)] if loaded.is_multimodal else None
        enc = loaded.encode([text], image)
        with torch.no_grad():
            ids = loaded.model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad
            )
        new = ids[0, enc["input_ids"].shape[1] :]
        answer = loaded.tokenizer.decode(new, skip_special_tokens=True).strip().split("\n")[0]
        out[r.qid] = {"answer": answer, "vqa_accuracy": vqa_accuracy(answer, human[r.qid])}
    return out


def summarise(rows: list[dict]) -> dict:
    """Per split (and per constraint type within it): n, accuracy, mean p(answer)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["split"]].append(r)
    out = {}
    for split, rs in sorted(groups.items()):
        entry = _stats(rs)
        by_type = defaultdict(list)
        for r in rs:
            by_type[r["constraint_type"]].append(r)
        entry["by_constraint_type"] = {k: _stats(v) for k, v in sorted(by_type.items())}
        vqa = [r["vqa_accuracy"] for r in rs if "vqa_accuracy" in r]
        if vqa:  # OK-VQA with its annotators' answers (the paper world)
            entry["vqa_accuracy"] = float(np.mean(vqa))
            entry["n_vqa"] = len(vqa)
        out[split] = entry
    return out


def _stats(rs: list[dict]) -> dict:
    return {
        "n": len(rs),
        "accuracy": float(np.mean([r["correct"] for r in rs])) if rs else float("nan"),
        "mean_p_answer": float(np.mean([r["p_answer"] for r in rs])) if rs else float("nan"),
    }


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
