"""The long-tail editing split ("heldout"): a landmark -> country subset of Encyclopedic-VQA,
whose images are Google Landmarks v2 photos (the paper's long-tail editing experiment).

Rows are selected, deduplicated and capped as `load_evqa` says; the constraint is the "this
<noun>" phrase of the question, the subject the Wikipedia title. Images: the landmark file rule
of `rows` (`<images_dir>/<first dataset_image_id>.jpg`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RealRow, file_image, read_rows
from mmtrace.seeding import derive


def parse_image_ids(value: str) -> list[str]:
    """E-VQA `dataset_image_ids`: a list literal, or ids separated by '|', ',' or spaces."""
    value = (value or "").strip()
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
            return [str(v).strip() for v in parsed if str(v).strip()]
        except (ValueError, SyntaxError):
            value = value.strip("[]")
    return [v.strip(" '\"") for v in re.split(r"[|,\s]+", value) if v.strip(" '\"")]


THIS_PHRASE = re.compile(
    r"\b[Tt]his(?:\s+(?!(?:is|was|located|situated|found|built|in|on|at)\b)[A-Za-z-]+)?"
)


def load_evqa(
    csv_path: str | Path,
    images_dir: Path | None = None,
    data_dir: Path | None = None,
    dataset_name: str = "landmarks",
    question_type: str = "templated",
    question_contains: str = "country",
    max_rows: int | None = 200,
    seed: int = 0,
    dedupe_by: str = "wikipedia_url",
) -> tuple[list[RealRow], Report]:
    """The long-tail editing subset of an Encyclopedic-VQA CSV: `dataset_name` rows of
    `question_type` whose question contains `question_contains` (case-insensitive), one per
    `dedupe_by` value, with the first image id; up to `max_rows` of them, taken in a seeded
    order (sha256 of seed, question, Wikipedia URL) so the subset is the same on every machine.
    The visual constraint is "this <noun>" in the question (e.g. "this church"; just "this" when
    a verb or preposition follows, as in "Where is this located?"); the subject is
    the Wikipedia title; answers are the '|'-separated alternatives. Rows beyond `max_rows` are
    reported as "over max_rows"."""
    report = Report(str(csv_path))
    candidates: list[tuple[int, RealRow]] = []
    seen: set[str] = set()
    rows = read_rows(Path(csv_path), ("question", "answer", "dataset_image_ids", "dataset_name"))
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            derive(seed, "evqa", rows[i].get("question", ""), rows[i].get("wikipedia_url", "")),
            i,
        ),
    )
    for i in order:
        row = rows[i]
        idx = i
        question = (row.get("question") or "").strip()
        if (row.get("dataset_name") or "").strip() != dataset_name:
            report.drop(idx, f"dataset_name is not {dataset_name}")
            continue
        if (row.get("question_type") or "").strip() != question_type:
            report.drop(idx, f"question_type is not {question_type}")
            continue
        if question_contains.lower() not in question.lower():
            report.drop(idx, f"question does not ask about {question_contains!r}")
            continue
        answers = []
        for a in (row.get("answer") or "").split("|"):
            a = a.strip()
            if a and a not in answers:
                answers.append(a)
        if not answers:
            report.drop(idx, "no answer")
            continue
        m = THIS_PHRASE.search(question)
        if m is None:
            report.drop(idx, "no 'this ...' constraint phrase in the question")
            continue
        ids = parse_image_ids(row.get("dataset_image_ids", ""))
        if not ids:
            report.drop(idx, "no image id")
            continue
        key = (row.get(dedupe_by) or "").strip()
        if key and key in seen:
            report.drop(idx, f"duplicate {dedupe_by}")
            continue
        image, reason = file_image(f"{ids[0]}.jpg", images_dir, data_dir)
        if image is None:
            report.drop(idx, reason)
            continue
        if max_rows is not None and len(candidates) >= max_rows:
            report.drop(idx, "over max_rows")
            continue
        seen.add(key)
        subject = (row.get("wikipedia_title") or "").strip()
        r = RealRow(
            "heldout", idx, question, m.group(0), m.start(), m.end(), subject, image, answers
        )
        r.relation = question_contains
        r.meta = {
            "image_id": ids[0],
            "wikipedia_url": (row.get("wikipedia_url") or "").strip(),
            "question_original": (row.get("question_original") or "").strip(),
            "evqa_split": (row.get("encyclopedic_vqa_split") or "").strip(),
        }
        candidates.append((idx, r))
        report.kept += 1
    out = [r for _, r in sorted(candidates, key=lambda t: t[0])]
    report.log()
    return out, report
