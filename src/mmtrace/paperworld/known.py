"""The Known split: the release's multimodal_known.csv joined to ROME's `known_1000.json`.

Answers are joined by subject. A subject with several facts is resolved by the question: the
fact whose prompt shares the most relation words with it (subject, constraint and stopwords
removed), if exactly one does. The fact's `relation_id` and prompt, and the subject's other
facts, travel on the row (`relation`, `meta`) for annotation. Images: the folder rule of `rows`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RELEASE_COLUMNS, RealRow, base_row, folder_image, read_rows

STOPWORDS = frozenset(
    ["a", "an", "the", "of", "is", "in", "to", "by", "was", "s", "this", "that", "it", "its"]
)


def _words(text: str, drop: set[str]) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOPWORDS and w not in drop}


def _best_fact(r: RealRow, cands: list[dict]) -> list[dict] | None:
    """The fact whose relation words (its prompt minus subject and stopwords) overlap the
    question's most; None unless exactly one fact has the largest, non-zero overlap."""
    drop = _words(r.subject, set()) | _words(r.main_entity, set())
    q = _words(r.question, drop)
    scores = [len(q & _words(c["prompt"], drop)) for c in cands]
    best = max(scores)
    if best == 0 or scores.count(best) > 1:
        return None
    return [cands[scores.index(best)]]


def load_known(
    csv_path: str | Path,
    known_json: str | Path,
    images_dir: Path | None = None,
    data_dir: Path | None = None,
) -> tuple[list[RealRow], Report]:
    facts: dict[str, list[dict]] = defaultdict(list)
    for f in json.loads(Path(known_json).read_text(encoding="utf-8")):
        facts[f["subject"]].append(f)
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(read_rows(Path(csv_path), RELEASE_COLUMNS + ("subject",))):
        r = base_row("known", report, row, i, "subject")
        if r is None:
            continue
        cands = facts.get(r.subject, [])
        if not cands:
            report.drop(r.index, "subject not in known_1000")
            continue
        if len({c["attribute"] for c in cands}) > 1:
            cands = _best_fact(r, cands)
            if cands is None:
                report.drop(r.index, "subject has several facts and the question matches none")
                continue
        image, reason = folder_image(r.image, images_dir, data_dir)
        if image is None:
            report.drop(r.index, reason)
            continue
        fact = cands[0]
        r.image = image
        r.answers = [fact["attribute"]]
        r.relation = fact.get("relation_id", "")
        others = [
            {"relation": f.get("relation_id", ""), "attribute": f["attribute"]}
            for f in facts[r.subject]
            if f is not fact and f.get("relation_id") != r.relation
        ]
        r.meta = {"prompt": fact["prompt"], "known_id": fact.get("known_id"), "others": others}
        out.append(r)
        report.kept += 1
    report.log()
    return out, report
