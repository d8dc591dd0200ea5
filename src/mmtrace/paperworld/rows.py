"""A loaded row of the released VQA-Constraints CSVs, and the rules every loader shares.

The release's CSVs hold questions, the constraint (`main_entity`) and an image reference, but no
answers: each split's loader (`known`, `movies`, `okvqa`, `evqa`) joins the answers from the
source the paper used. Every row either loads or is reported with its reason (`report.Report`);
nothing is skipped silently. The constraint span is located as `spans.find_span` says.

Image rules (`images_dir=None` skips the check and keeps the release reference, minus "./"):
- Known/Movies: `image_url` is a folder "./A photo of <name>" of the extracted Google-Drive
  archive; the image is the first file with extension jpg/jpeg/png/webp (case-insensitive) in
  sorted name order. Missing folder: "image folder missing"; no such file: "no image in folder";
- OK-VQA: the COCO file name of `image_url` (COCO_val2014_<12 digits>.jpg) directly under
  `images_dir`; missing: "image file missing";
- E-VQA: the Google Landmarks v2 image `<images_dir>/<first dataset_image_id>.jpg`, fetched by
  the download step; missing: "image file missing".
A found image is stored relative to `data_dir` (default: the parent of `images_dir`, as the toy
world stores "images/...").
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from mmtrace.dataset import DataError
from mmtrace.paperworld.report import Report
from mmtrace.paperworld.spans import find_span, recover_span

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# The columns every released VQA-Constraints CSV has (Known adds `subject`, Movies `director`).
RELEASE_COLUMNS: tuple[str, ...] = ("question", "main_entity", "image_url")


@dataclass
class RealRow:
    """One loaded row: the question, its constraint span and its acceptable answers.

    `relation` is the known_1000 relation_id (Known) or the OK-VQA question_type; `human_answers`
    holds the 10 OK-VQA annotator answers (VQA accuracy needs the counts, not just the set);
    `meta` carries split-specific material the annotation step uses (fact prompt, other facts,
    question and image ids, the Wikipedia title)."""

    split: str
    index: int
    question: str
    main_entity: str
    start: int
    end: int
    subject: str
    image: str
    answers: list[str]
    relation: str = ""
    human_answers: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def read_rows(path: Path, required: tuple[str, ...] = ("question",)) -> list[dict]:
    """A CSV file's rows, as dicts keyed by its header. A file that is not UTF-8 or lacks a
    `required` column is an error naming it (every row would be lost otherwise); a row with
    more or fewer fields than the header is kept for `base_row` to report and drop."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{path}: header: missing column(s) {', '.join(missing)}; found "
                    f"{', '.join(f or '(unnamed)' for f in reader.fieldnames or []) or 'none'}"
                )
            return list(reader)
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: byte {exc.object[exc.start : exc.start + 1]!r} is not UTF-8"
        ) from None


def malformed(row: dict) -> str | None:
    """Why a CSV row cannot be read field by field (None if it can)."""
    if None in row:  # csv.DictReader's restkey: more fields than the header
        return "malformed row: more fields than the header"
    if any(v is None for v in row.values()):  # restval: fewer fields than the header
        return "malformed row: fewer fields than the header"
    return None


def row_index(row: dict, fallback: int) -> int:
    """The release's row index (its unnamed first column), or `fallback` if it has none."""
    try:
        return int(row.get("") or fallback)
    except ValueError:
        return fallback


def base_row(
    split: str, report: Report, row: dict, i: int, subject_col: str | None, recover: bool = False
) -> RealRow | None:
    """The row's question, constraint span, subject and image reference (no answers yet); None,
    reported, when the question is empty or the constraint is not in it."""
    idx = row_index(row, i)
    reason = malformed(row)
    if reason is not None:
        report.drop(idx, reason)
        return None
    if not report.claim(idx):
        report.drop(idx, "index repeated (an earlier row has it; question ids must be unique)")
        return None
    question = (row.get("question") or "").strip()
    entity = row.get("main_entity") or ""
    if not question:
        report.drop(idx, "empty question")
        return None
    span = find_span(question, entity)
    if span is None and recover:
        span = recover_span(question, entity)
        if span is not None:
            report.note("span recovered from main_entity words")
    if span is None:
        report.drop(idx, "main_entity not found in the question")
        return None
    subject = (row.get(subject_col) or "").strip() if subject_col else ""
    image = (row.get("image_url") or "").strip()
    return RealRow(split, idx, question, entity, span[0], span[1], subject, image, [])


# -- images ---------------------------------------------------------------------------------


def _relative(path: Path, images_dir: Path, data_dir: Path | None) -> str:
    base = data_dir if data_dir is not None else images_dir.parent
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _inside(images_dir: Path, ref: str) -> Path | None:
    """`images_dir / ref` if it stays inside `images_dir` (no absolute path, no `..` out)."""
    root = Path(images_dir).resolve()
    path = (root / ref).resolve()
    return path if path == root or root in path.parents else None


def release_ref(image_url: str) -> str:
    """The release's image reference without its leading "./"."""
    return image_url[2:] if image_url.startswith("./") else image_url


def folder_image(
    image_url: str, images_dir: Path | None, data_dir: Path | None = None
) -> tuple[str | None, str | None]:
    """(image path, None) or (None, drop reason) for a Known/Movies "./A photo of <name>" folder:
    the first jpg/jpeg/png/webp file (case-insensitive) in sorted name order."""
    if images_dir is None:
        return release_ref(image_url), None
    folder = _inside(images_dir, release_ref(image_url))
    if folder is None:
        return None, "image path leaves the image folder"
    if not folder.is_dir():
        return None, "image folder missing"
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        return None, "no image in folder"
    return _relative(files[0], Path(images_dir), data_dir), None


def file_image(
    name: str, images_dir: Path | None, data_dir: Path | None = None, ref: str | None = None
) -> tuple[str | None, str | None]:
    """(image path, None) or (None, "image file missing") for a single image file `name`
    directly under `images_dir`; unchecked (`ref` or the name) when `images_dir` is None."""
    if images_dir is None:
        return (ref if ref is not None else name), None
    path = _inside(images_dir, name)
    if path is None:
        return None, "image path leaves the image folder"
    if not path.is_file():
        return None, "image file missing"
    return _relative(path, Path(images_dir), data_dir), None
