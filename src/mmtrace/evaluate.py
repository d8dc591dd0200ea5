"""Model accuracy: top-1 first answer token, and p(answer).

A question counts as answered when the model's top-1 next token after the prompt is the first
token of one of its acceptable answers; p(answer) sums the probability of those first tokens.
MLLMs answer the image questions (on renderings never used in training), text-only models the
textual counterparts. Where a split has its annotators' answers (OK-VQA in the paper world), the
model's generated short answer is also scored with the official VQA accuracy.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from mmtrace import prompts
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
            prompts.build(template, r.question if loaded.is_multimodal else r.text_question).text
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
    `max_new_tokens` tokens, cut at the first newline, scored by `vqa_accuracy` against the
    question's 10 annotator answers. qid -> {answer, vqa_accuracy}."""
    template = templates.mllm if loaded.is_multimodal else templates.llm
    pad = loaded.tokenizer.pad_token_id
    out: dict[str, dict] = {}
    todo = [r for r in records if human.get(r.qid)]
    for r in progress(todo, desc=f"VQA accuracy {loaded.name}"):
        text = prompts.build(template, r.question if loaded.is_multimodal else r.text_question).text
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


# -- VQA accuracy ---------------------------------------------------------------------------
# Normalisation as in the official VQA evaluation (vqaEval.py): punctuation handling, number
# words to digits, articles dropped, apostrophe-less contractions restored.

_PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">"]
_PUNCTUATION += ["<", "@", "`", ",", "?", "!"]
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
_CONTRACTED = [
    "ain't",
    "aren't",
    "can't",
    "could've",
    "couldn't",
    "couldn't've",
    "didn't",
    "doesn't",
    "don't",
    "hadn't",
    "hadn't've",
    "hasn't",
    "haven't",
    "he'd",
    "he'd've",
    "he's",
    "how'd",
    "how'll",
    "how's",
    "isn't",
    "it'd",
    "it'd've",
    "it'll",
    "ma'am",
    "mightn't",
    "mightn't've",
    "might've",
    "mustn't",
    "must've",
    "needn't",
    "not've",
    "o'clock",
    "oughtn't",
    "'ow's'at",
    "shan't",
    "she'd've",
    "she's",
    "should've",
    "shouldn't",
    "shouldn't've",
    "somebody'd",
    "somebody'd've",
    "somebody'll",
    "somebody's",
    "someone'd",
    "someone'd've",
    "someone'll",
    "someone's",
    "something'd",
    "something'd've",
    "something'll",
    "that's",
    "there'd",
    "there'd've",
    "there're",
    "there's",
    "they'd",
    "they'd've",
    "they'll",
    "they're",
    "they've",
    "'twas",
    "wasn't",
    "we'd've",
    "we've",
    "weren't",
    "what'll",
    "what're",
    "what's",
    "what've",
    "when's",
    "where'd",
    "where's",
    "where've",
    "who'd",
    "who'd've",
    "who'll",
    "who's",
    "who've",
    "why'll",
    "why're",
    "why's",
    "won't",
    "would've",
    "wouldn't",
    "wouldn't've",
    "y'all",
    "y'all'll",
    "y'all'd've",
    "you'd",
    "you'd've",
    "you'll",
    "you're",
    "you've",
]


def _contraction_map() -> dict[str, str]:
    """Apostrophe-less spellings ("dont", "youre") -> the contraction; for two-apostrophe forms
    the official table also lists the half-contracted spellings ("couldnt've", "couldn'tve").
    The official table spells the "I" forms capitalised ("Im", "Ive"), so after lower-casing
    they never match; they are left out here to give the same results, as is "let's" (mapped
    to itself there)."""
    table: dict[str, str] = {}
    for word in _CONTRACTED:
        parts = word.split("'")
        table["".join(parts)] = word
        if len(parts) == 3:
            table[parts[0] + parts[1] + "'" + parts[2]] = word
            table[parts[0] + "'" + parts[1] + parts[2]] = word
    return table


_CONTRACTIONS = _contraction_map()


def normalize_vqa_answer(text: str) -> str:
    """The official VQA answer normalisation (punctuation, then digits/articles/contractions)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    out = text
    for p in _PUNCTUATION:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    out = _PERIOD_STRIP.sub("", out)
    words = []
    for w in out.lower().split():
        w = _NUMBERS.get(w, w)
        if w not in _ARTICLES:
            words.append(_CONTRACTIONS.get(w, w))
    return " ".join(words)


def vqa_accuracy(prediction: str, human_answers: list[str]) -> float:
    """VQA accuracy: the mean, over the leave-one-out subsets of the human answers (10 in
    OK-VQA), of min(#answers in the subset equal to the prediction / 3, 1), after normalising
    prediction and answers alike. 1.0 needs 3 agreeing annotators in every subset. (The official
    script normalises the human answers only when they disagree; OK-VQA's `answer` fields are
    already normalised, so normalising them always changes nothing there.)"""
    if not human_answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    pred = normalize_vqa_answer(prediction)
    gts = [normalize_vqa_answer(a) for a in human_answers]
    matches = sum(g == pred for g in gts)
    scores = [min((matches - (g == pred)) / 3.0, 1.0) for g in gts]
    return sum(scores) / len(scores)


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
