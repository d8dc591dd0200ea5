"""Loading the released VQA-Constraints CSVs and joining their answers (groundwork for issue 6).

The release's CSVs hold questions, the constraint (`main_entity`) and an image reference, but no
answers. Answers are joined from the sources the paper used:
- Known: ROME's `known_1000.json`, by subject. A subject with several facts is resolved by the
  question: the fact whose prompt shares the most relation words with it (subject, constraint
  and stopwords removed), if exactly one does;
- Movies: the Movies table of Yuksekgonul et al. (`movies.pkl`): every movie of the director.

Every row either loads or is reported with its reason (`Report`); nothing is skipped silently.
The constraint span is located in the question exactly, then case-insensitively, then after
trimming punctuation and whitespace (`find_span`); a row whose `main_entity` is still not found
is reported, not guessed.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PUNCT = " \t\r\n,.;:!?\"'"


@dataclass
class RealRow:
    """One loaded row: the question, its constraint span and its acceptable answers."""

    split: str
    index: int
    question: str
    main_entity: str
    start: int
    end: int
    subject: str
    image: str
    answers: list[str]


@dataclass
class Report:
    """Rows kept and dropped (by reason, with the first few row indices of each)."""

    file: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def drop(self, index: int, reason: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(index)

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        parts = [f"{n} {r} (rows {self.examples[r]}...)" for r, n in sorted(self.dropped.items())]
        return f"{self.file}: {self.total} rows, {self.kept} kept" + (
            "; dropped: " + "; ".join(parts) if parts else ""
        )


def find_span(question: str, entity: str) -> tuple[int, int] | None:
    """Character span of `entity` in `question`: exact, then case-insensitive, then trimmed of
    surrounding punctuation/whitespace (the release has entries like 'This application,')."""
    for needle, hay in ((entity, question), (entity.lower(), question.lower())):
        i = hay.find(needle)
        if needle and i >= 0:
            return i, i + len(needle)
    trimmed = entity.strip(PUNCT)
    if trimmed:
        i = question.lower().find(trimmed.lower())
        if i >= 0:
            return i, i + len(trimmed)
    return None


class _PlainData(pickle.Unpickler):
    """Unpickles plain data only: any class or function reference is refused, so loading a
    tampered pickle cannot import or run code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: plain data only")


def load_plain_pickle(path: str | Path):
    with open(path, "rb") as fh:
        return _PlainData(io.BytesIO(fh.read())).load()


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _index(row: dict, fallback: int) -> int:
    try:
        return int(row.get("") or fallback)
    except ValueError:
        return fallback


def _base(split: str, path: Path, report: Report, row: dict, i: int, subject_col: str | None):
    idx = _index(row, i)
    question = (row.get("question") or "").strip()
    entity = row.get("main_entity") or ""
    if not question:
        report.drop(idx, "empty question")
        return None
    span = find_span(question, entity)
    if span is None:
        report.drop(idx, "main_entity not found in the question")
        return None
    subject = (row.get(subject_col) or "").strip() if subject_col else ""
    return RealRow(
        split, idx, question, entity, span[0], span[1], subject, row.get("image_url", ""), []
    )


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


def load_known(csv_path: str | Path, known_json: str | Path) -> tuple[list[RealRow], Report]:
    facts: dict[str, list[dict]] = defaultdict(list)
    for f in json.loads(Path(known_json).read_text(encoding="utf-8")):
        facts[f["subject"]].append(f)
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(_rows(Path(csv_path))):
        r = _base("known", Path(csv_path), report, row, i, "subject")
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
        r.answers = [cands[0]["attribute"]]
        out.append(r)
        report.kept += 1
    return out, report


def load_movies(csv_path: str | Path, movies_pkl: str | Path) -> tuple[list[RealRow], Report]:
    table = load_plain_pickle(movies_pkl)
    by_director: dict[str, list[str]] = defaultdict(list)
    for m in table:
        by_director[m["director_name"]].append(m["movie_name"])
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(_rows(Path(csv_path))):
        r = _base("movies", Path(csv_path), report, row, i, "director")
        if r is None:
            continue
        movies = by_director.get(r.subject)
        if not movies:
            report.drop(r.index, "director not in the Movies table")
            continue
        r.answers = sorted(set(movies))
        out.append(r)
        report.kept += 1
    return out, report
