"""Loading the released VQA-Constraints CSVs and the long-tail editing set, joining their answers.

The release's CSVs hold questions, the constraint (`main_entity`) and an image reference, but no
answers. Answers are joined from the sources the paper used:
- Known: ROME's `known_1000.json`, by subject. A subject with several facts is resolved by the
  question: the fact whose prompt shares the most relation words with it (subject, constraint
  and stopwords removed), if exactly one does. The fact's `relation_id` and prompt, and the
  subject's other facts, travel on the row (`relation`, `meta`) for annotation;
- Movies: the Movies table of Yuksekgonul et al. (`movies.pkl`): every movie of the director,
  most popular first (ties alphabetically), so that `answers[0]` is the likeliest answer;
- OK-VQA (`load_okvqa`): OK-VQA v1.0 val questions and annotations (join rule below);
- Encyclopedic-VQA (`load_evqa`): a landmark -> country subset for long-tail editing.

Every row either loads or is reported with its reason (`Report`); nothing is skipped silently.
The constraint span is located in the question exactly, then case-insensitively, then after
trimming punctuation and whitespace, then (for multi-line `main_entity` values with annotator
notes) on its first line (`find_span`); a row whose `main_entity` is still not found is
reported, not guessed.

OK-VQA join rule. The release's okvqa.csv was made from the questions JSON in order, but index
3188 is missing and six questions had typos fixed, so question text alone is not a key. A CSV row
with index i is joined to the i-th JSON question when the image id in its `image_url` equals that
question's `image_id` (the question text may differ: counted as a note, not a drop). Otherwise
the row is joined to the question on the same image whose normalised text is most similar to
it (similarity >= 0.8, `difflib`), and reported as "not joined to an OK-VQA question" if none is.
Answers come from the annotations by `question_id`: the distinct human answers ordered by
frequency (ties alphabetically); all human answers are kept in `human_answers` for VQA accuracy.

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

import ast
import csv
import difflib
import io
import json
import logging
import os
import pickle
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mmtrace.seeding import derive

log = logging.getLogger(__name__)

PUNCT = " \t\r\n,.;:!?\"'"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})


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


@dataclass
class Report:
    """Rows kept and dropped (by reason, with the first few row indices of each); `notes`
    counts kept rows with something worth knowing (e.g. a question text that differs from its
    source)."""

    file: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    notes: Counter = field(default_factory=Counter)

    def drop(self, index: int, reason: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(index)

    def note(self, reason: str) -> None:
        self.notes[reason] += 1

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        parts = [f"{n} {r} (rows {self.examples[r]}...)" for r, n in sorted(self.dropped.items())]
        text = f"{self.file}: {self.total} rows, {self.kept} kept" + (
            "; dropped: " + "; ".join(parts) if parts else ""
        )
        if self.notes:
            text += "; notes: " + "; ".join(f"{n} {r}" for r, n in sorted(self.notes.items()))
        return text

    def log(self) -> None:
        log.info("%s", self.summary())

    def as_dict(self) -> dict:
        """The counts as plain data, for a JSON report (keys sorted)."""
        return {
            "file": self.file,
            "total": self.total,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "examples": dict(sorted(self.examples.items())),
            "notes": dict(sorted(self.notes.items())),
        }


def find_span(question: str, entity: str) -> tuple[int, int] | None:
    """Character span of `entity` in `question`: exact, then case-insensitive, then trimmed of
    surrounding punctuation/whitespace (the release has entries like 'This application,'), then
    the first line only (a few OK-VQA entries append annotator notes on further lines)."""
    for needle, hay in ((entity, question), (entity.lower(), question.lower())):
        i = hay.find(needle)
        if needle and i >= 0:
            return i, i + len(needle)
    candidates = [entity.strip(PUNCT)]
    first_line = entity.strip().split("\n", 1)[0].strip(PUNCT)
    if first_line != candidates[0]:
        candidates.append(first_line)
    for trimmed in candidates:
        if trimmed:
            i = question.lower().find(trimmed.lower())
            if i >= 0:
                return i, i + len(trimmed)
    return None


_DETERMINERS = frozenset({"this", "these", "that", "those", "the", "a", "an"})
_FUNCTION_WORDS = _DETERMINERS | frozenset(
    ["of", "on", "in", "at", "to", "for", "by", "with", "near", "over", "under", "from"]
    + ["is", "are", "was", "were", "be", "it", "its", "and", "or"]
)


def recover_span(question: str, entity: str) -> tuple[int, int] | None:
    """Fallback for OK-VQA entities that are a rephrasing, not a substring, of the question
    ('this plant' for 'Name the type of plant this is?'): the longest run of consecutive entity
    words found as whole words in the question, trimmed of function words at both ends (a
    leading determiner that the question also has before the run is kept: 'this dog'). None when
    no content word of the entity occurs in the question."""
    words = re.findall(r"[A-Za-z0-9']+", entity.split("\n", 1)[0])
    best: tuple[int, int, int] | None = None  # (n content words, start, end)
    for i in range(len(words)):
        for j in range(len(words), i, -1):
            run = words[i:j]
            while run and run[0].lower() in _FUNCTION_WORDS:
                run = run[1:]
            while run and run[-1].lower() in _FUNCTION_WORDS:
                run = run[:-1]
            if not run:
                continue
            pattern = r"\b" + r"\s+".join(re.escape(w) for w in run) + r"\b"
            m = re.search(pattern, question, flags=re.IGNORECASE)
            if m is None:
                continue
            start = m.start()
            det = re.search(r"\b(this|these|that|those)\s+$", question[:start], re.IGNORECASE)
            if det is not None:
                start = det.start()
            if best is None or len(run) > best[0]:
                best = (len(run), start, m.end())
    return None if best is None else (best[1], best[2])


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


def _base(
    split: str, report: Report, row: dict, i: int, subject_col: str | None, recover: bool = False
):
    idx = _index(row, i)
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
    return Path(os.path.relpath(path, base)).as_posix()


def _release_ref(image_url: str) -> str:
    return image_url[2:] if image_url.startswith("./") else image_url


def folder_image(
    image_url: str, images_dir: Path | None, data_dir: Path | None = None
) -> tuple[str | None, str | None]:
    """(image path, None) or (None, drop reason) for a Known/Movies "./A photo of <name>" folder:
    the first jpg/jpeg/png/webp file (case-insensitive) in sorted name order."""
    if images_dir is None:
        return _release_ref(image_url), None
    folder = Path(images_dir) / _release_ref(image_url)
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
    path = Path(images_dir) / name
    if not path.is_file():
        return None, "image file missing"
    return _relative(path, Path(images_dir), data_dir), None


# -- Known and Movies ---------------------------------------------------------------------

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
    for i, row in enumerate(_rows(Path(csv_path))):
        r = _base("known", report, row, i, "subject")
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


def load_movies(
    csv_path: str | Path,
    movies_pkl: str | Path,
    images_dir: Path | None = None,
    data_dir: Path | None = None,
) -> tuple[list[RealRow], Report]:
    table = load_plain_pickle(movies_pkl)
    popularity: dict[str, dict[str, float]] = defaultdict(dict)
    for m in table:
        pop = float(m.get("popularity") or 0.0)
        films = popularity[m["director_name"]]
        films[m["movie_name"]] = max(pop, films.get(m["movie_name"], pop))
    report, out = Report(str(csv_path)), []
    for i, row in enumerate(_rows(Path(csv_path))):
        r = _base("movies", report, row, i, "director")
        if r is None:
            continue
        films = popularity.get(r.subject)
        if not films:
            report.drop(r.index, "director not in the Movies table")
            continue
        image, reason = folder_image(r.image, images_dir, data_dir)
        if image is None:
            report.drop(r.index, reason)
            continue
        r.image = image
        r.answers = sorted(films, key=lambda t: (-films[t], t))
        r.relation = "directed"
        out.append(r)
        report.kept += 1
    report.log()
    return out, report


# -- OK-VQA ---------------------------------------------------------------------------------

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
    for i, row in enumerate(_rows(Path(csv_path))):
        r = _base("okvqa", report, row, i, None, recover=True)
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
        image, reason = file_image(m.group(0), images_dir, data_dir, ref=_release_ref(r.image))
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


# -- Encyclopedic-VQA (long-tail editing) ---------------------------------------------------


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
    rows = _rows(Path(csv_path))
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
