"""The question table shared by every stage: VQA-Constraints' columns plus our annotations.

Files are one CSV per split with the released CSVs' leading columns (an unnamed index, `question`,
`subject` or `director`, `main_entity`, `image_url`) followed by the annotation columns below. The
loader validates every row and names the file, row and field of anything wrong.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from mmtrace.io import atomic_open

log = logging.getLogger(__name__)

JSON_FIELDS = ("answers", "constraints", "paraphrases", "text_constraints", "text_paraphrases")
EXTRA_COLUMNS = (
    "qid",
    "split",
    "entity_id",
    "category",
    "relation",
    "answer",
    "answers",
    "constraint_type",
    "constraints",
    "paraphrases",
    "text_question",
    "text_constraints",
    "text_paraphrases",
    "held_out",
)
# What every split CSV must have (the release's `subject`/`director` column may be absent).
REQUIRED_COLUMNS = ("question", "main_entity", "image_url") + tuple(
    c for c in EXTRA_COLUMNS if c != "held_out"
)
SUBJECT_COLUMN = {"known": "subject", "heldout": "subject", "movies": "director", "okvqa": None}


class DataError(ValueError):
    """A data file is malformed; the message names the file, row and field."""


class ConstraintSpan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str
    start: int
    end: int
    type: Literal["visual", "textual"]
    replacement: str


class QuestionRecord(BaseModel):
    """One constraint-annotated question (image question and its textual counterpart)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    qid: str
    split: str
    entity_id: str
    category: str
    relation: str
    question: str
    subject: str
    main_entity: str
    image_url: str
    answer: str
    answers: list[str]
    constraint_type: Literal["single", "multi"]
    constraints: list[ConstraintSpan]
    paraphrases: list[str]
    text_question: str
    text_constraints: list[ConstraintSpan]
    text_paraphrases: list[str]
    held_out: bool

    @field_validator("image_url")
    @classmethod
    def _inside_data(cls, v: str) -> str:
        """Images are read relative to the data folder; a path that leaves it (absolute, `..`)
        could read any file on the machine."""
        parts = PurePosixPath(v.replace("\\", "/")).parts
        if (
            not v
            or v.startswith(("/", "\\"))
            or re.match(r"[A-Za-z]:", v) is not None  # a drive letter (C:...)
            or ".." in parts
        ):
            raise ValueError(
                f"{v!r} must be a relative path inside the data folder (no '..', not absolute)"
            )
        return v

    @field_validator("answers")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v or any(not a.strip() for a in v):
            raise ValueError("needs at least one non-empty answer")
        return v

    @model_validator(mode="after")
    def _spans_match(self) -> QuestionRecord:
        for field_name, text in (
            ("constraints", self.question),
            ("text_constraints", self.text_question),
        ):
            spans = getattr(self, field_name)
            if not spans:
                raise ValueError(f"{field_name}: no constraint span")
            for s in spans:
                if text[s.start : s.end] != s.text:
                    raise ValueError(
                        f"{field_name}: span {s.text!r} is not at characters "
                        f"[{s.start}:{s.end}] of {text!r}"
                    )
        if self.answer not in self.answers:
            raise ValueError("answer is not among answers")
        n_text = sum(s.type == "textual" for s in self.constraints)
        if (self.constraint_type == "multi") != (n_text > 0):
            raise ValueError("constraint_type disagrees with the constraint spans")
        return self

    @property
    def visual_span(self) -> ConstraintSpan:
        return next(s for s in self.constraints if s.type == "visual")

    @property
    def textual_spans(self) -> list[ConstraintSpan]:
        return [s for s in self.constraints if s.type == "textual"]


def write_split(path: str | Path, split: str, records: list[dict]) -> None:
    """Write one split's CSV atomically, release columns first."""
    subject_col = SUBJECT_COLUMN.get(split, "subject")
    header = (
        ["", "question"] + ([subject_col] if subject_col else []) + ["main_entity", "image_url"]
    )
    header += [c for c in EXTRA_COLUMNS if c not in header]
    if subject_col is None:
        header.append("subject")
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        if rec["qid"] in seen:
            raise DataError(
                f"{path}: question id {rec['qid']!r} is used by rows {seen[rec['qid']] + 1} and "
                f"{i + 1}: every question needs its own id (scores are looked up by it)"
            )
        seen[rec["qid"]] = i
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for i, rec in enumerate(records):
            row = dict(rec)
            row[""] = i
            row["image_url"] = rec["image_url"]
            if subject_col:
                row[subject_col] = rec["subject"]
            for f in JSON_FIELDS:
                row[f] = json.dumps(rec[f], ensure_ascii=False, sort_keys=True)
            row["held_out"] = "true" if rec["held_out"] else "false"
            w.writerow([row[c] for c in header])


def _parse_row(path: Path, lineno: int, row: dict) -> QuestionRecord:
    if None in row:  # csv.DictReader's restkey: more fields than the header
        raise DataError(
            f"{path}: row {lineno}: {len(row) - 1 + len(row[None])} fields, but the header has "
            f"{len(row) - 1}: a field is split or a delimiter is unquoted"
        )
    short = [k for k, v in row.items() if v is None]  # restval: fewer fields than the header
    if short:
        raise DataError(
            f"{path}: row {lineno}: truncated, field {short[0]!r} and {len(short) - 1} more are "
            "missing"
        )
    data: dict = {k: v for k, v in row.items() if k not in ("",)}
    for alias in ("director",):
        if alias in data:
            data["subject"] = data.pop(alias)
    for f in JSON_FIELDS:
        if f not in data:
            raise DataError(f"{path}: row {lineno}: missing column {f!r}")
        try:
            data[f] = json.loads(data[f])
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: row {lineno}: field {f!r} is not valid JSON ({exc})") from exc
    data["held_out"] = str(data.get("held_out", "")).strip().lower() == "true"
    try:
        return QuestionRecord(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "row"
        raise DataError(f"{path}: row {lineno}: field {loc!r}: {first['msg']}") from exc


def load_split(path: str | Path) -> list[QuestionRecord]:
    """Load and validate one split CSV; raises DataError naming file, row (1-based data row,
    as a spreadsheet would number it after the header) and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{path}: header: missing column(s) {', '.join(missing)}; found "
                    f"{', '.join(reader.fieldnames or []) or 'no header'}"
                )
            records = [_parse_row(path, i, row) for i, row in enumerate(reader, start=1)]
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: byte {exc.object[exc.start : exc.start + 1]!r} is not UTF-8: "
            "save the file as UTF-8"
        ) from None
    rows: dict[str, int] = {}
    for i, rec in enumerate(records, start=1):
        if rec.qid in rows:
            raise DataError(
                f"{path}: rows {rows[rec.qid]} and {i}: field 'qid': {rec.qid!r} is repeated "
                "(every question needs its own id)"
            )
        rows[rec.qid] = i
    return records


def load_questions(paths: list[str | Path]) -> list[QuestionRecord]:
    out: list[QuestionRecord] = []
    for p in paths:
        recs = load_split(p)
        log.info("loaded %d questions from %s", len(recs), p)
        out.extend(recs)
    return out
