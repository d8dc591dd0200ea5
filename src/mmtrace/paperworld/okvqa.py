"""The OK-VQA split: the release's okvqa.csv joined to OK-VQA v1.0's val questions and
annotations.

Join rule. The release's okvqa.csv was made from the questions JSON in order, but index 3188 is
missing and six questions had typos fixed, so question text alone is not a key. A CSV row with
index i is joined to the i-th JSON question when the image id in its `image_url` equals that
question's `image_id` (the question text may differ: counted as a note, not a drop). Otherwise
the row is joined to the question on the same image whose normalised text is most similar to
it (similarity >= 0.8, `difflib`), and reported as "not joined to an OK-VQA question" if none is.
Answers come from the annotations by `question_id`: the distinct human answers ordered by
frequency (ties alphabetically); all human answers are kept in `human_answers` for VQA accuracy
(`mmtrace.evaluate.vqa_accuracy`). A constraint that is a rephrasing of the question is
recovered from its words (`spans.recover_span`). Images: the COCO file rule of `rows`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import (
    RELEASE_COLUMNS,
    RealRow,
    base_row,
    file_image,
    read_rows,
    release_ref,
)

COCO_NAME = re.compile(r"COCO_val2014_(\d{12})\.jpg$", re.IGNORECASE)


def _norm_question(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def ranked_answers(answers: list[str]) -> list[str]:
    """Distinct non-empty answers, most frequent first, ties alphabetically."""
    counts = Counter(a.strip() for a in answers if a and a.strip())
    return sorted(counts, key=lambda a: (-counts[a], a))


def load_okvqa(
    csv_path: str | Path,
    questions_json: str | Path,
    annotations_json: str | Path,
    images_dir: Path | None = None,
    data_dir: Path | None = None,
    min_similarity: float = 0.8,
) -> tuple[list[RealRow], Report]:
    """OK-VQA rows joined to their v1.0 question and annotation (join rule: module docstring)."""
    questions = json.loads(Path(questions_json).read_text(encoding="utf-8"))["questions"]
    annotations = json.loads(Path(annotations_json).read_text(encoding="utf-8"))["annotations"]
    by_qid = {a["question_id"]: a for a in annotations}
    by_image: dict[int, list[dict]] = defaultdict(list)
    for q in questions:
        by_image[int(q["image_id"])].append(q)
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(read_rows(Path(csv_path), RELEASE_COLUMNS)):
        r = base_row("okvqa", report, row, i, None, recover=True)
        if r is None:
            continue
        m = COCO_NAME.search(r.image)
        if m is None:
            report.drop(r.index, "image_url is not a COCO val2014 file name")
            continue
        image_id = int(m.group(1))
        q = questions[r.index] if 0 <= r.index < len(questions) else None
        if q is None or int(q["image_id"]) != image_id:
            target = _norm_question(r.question)
            scored = [
                (difflib.SequenceMatcher(None, target, _norm_question(c["question"])).ratio(), c)
                for c in by_image.get(image_id, [])
            ]
            scored = [s for s in scored if s[0] >= min_similarity]
            if not scored:
                report.drop(r.index, "not joined to an OK-VQA question")
                continue
            q = max(scored, key=lambda s: (s[0], -int(s[1]["question_id"])))[1]
            report.note("joined by image id and question similarity")
        if _norm_question(q["question"]) != _norm_question(r.question):
            report.note("question text differs from OK-VQA")
        ann = by_qid.get(q["question_id"])
        if ann is None:
            report.drop(r.index, "no annotation for the question_id")
            continue
        human = [str(a.get("answer", "")) for a in ann.get("answers", [])]
        answers = ranked_answers(human)
        if not answers:
            report.drop(r.index, "no non-empty human answer")
            continue
        image, reason = file_image(m.group(0), images_dir, data_dir, ref=release_ref(r.image))
        if image is None:
            report.drop(r.index, reason)
            continue
        r.image = image
        r.answers = answers
        r.human_answers = human
        r.relation = str(ann.get("question_type") or "okvqa")
        r.meta = {
            "question_id": int(q["question_id"]),
            "image_id": image_id,
            "answer_type": ann.get("answer_type", ""),
        }
        out.append(r)
        report.kept += 1
    report.log()
    return out, report
