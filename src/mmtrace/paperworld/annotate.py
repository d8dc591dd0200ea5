"""Constraint annotation of the real splits: loaded rows (`rows.RealRow`) -> question records.

`annotate(split, rows, seed)` returns dicts with every field of `dataset.QuestionRecord`, for
`dataset.write_split`. It follows the toy world's conventions (`toyworld/world.py`): the visual
span's `replacement` is another entity of the same split, the text form replaces the visual
constraint by the subject's name (span type stays "visual": it is the entity slot), and a
multi-constraint record adds a "textual" span, at the same place in both forms, whose replacement
is a wrong value of the same kind. The rules, so that results can be traced back to them, are
each documented in their module:

- Visual span: `spans` (the release's span, trimmed; Known spans cut short completed).
- Corruption (`replacement`): `replacements`.
- Paraphrases (two per question): `paraphrases`.
- Multi-constraint variants: `multi`.

Category. Known: the span without its determiner, lower case ("This building" -> "building");
Movies "director"; OK-VQA "object"; heldout (E-VQA) "landmark".

Relation. Known: known_1000 `relation_id`; Movies "directed"; OK-VQA the annotation's
`question_type` (or "okvqa"); heldout the E-VQA subset's question keyword ("country").

Text form (LLM baseline). The visual span is replaced by the subject ("This building is located
in" -> "Space Needle is located in"). OK-VQA has no subject: the text question is the question
as is (the LLM answers blind), and its text constraint is the same span with the same
replacement, so text tracing corrupts the same words.

Every skip is counted in the report's notes; rows that cannot be annotated are dropped there
with their reason.
"""

from __future__ import annotations

import logging
import random
import re

from mmtrace.paperworld.multi import ascii_letter, multi_variant
from mmtrace.paperworld.paraphrases import question_paraphrases
from mmtrace.paperworld.replacements import DETERMINERS, Pool, match_case, nwords
from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RealRow
from mmtrace.paperworld.spans import complete_known_span, span_record, trim_span
from mmtrace.seeding import derive

log = logging.getLogger(__name__)

SPLIT_CATEGORY = {"movies": "director", "okvqa": "object", "heldout": "landmark"}


def slug(text: str) -> str:
    """A normalised entity id: lower case, runs of non-word characters -> '-'."""
    return re.sub(r"[\W_]+", "-", text.lower()).strip("-") or "unknown"


def category_of(span_text: str) -> str:
    words = span_text.split()
    while words and words[0].lower() in DETERMINERS:
        words = words[1:]
    return " ".join(words).lower() or "object"


class Annotator:
    """One split's annotation: the tidied spans and the replacement pools of all its rows."""

    def __init__(self, split: str, rows: list[RealRow], seed: int, report: Report, **opts):
        self.split, self.rows, self.seed, self.report = split, rows, seed, report
        self.complete_spans: bool = opts.get("complete_spans", True)
        self.multi: bool = opts.get("multi", True)
        self.subjects = Pool([r.subject for r in rows if r.subject])
        self.spans: dict[int, tuple[int, int]] = {}
        for r in rows:
            start, end = trim_span(r.question, r.start, r.end)
            if start < end and split == "known" and self.complete_spans:
                new_end = complete_known_span(r.question, end, r.subject, r.meta.get("prompt", ""))
                if new_end != end:
                    report.note("Known span completed from the known_1000 prompt")
                end = new_end
            self.spans[id(r)] = (start, end)
        self.span_texts = Pool([r.question[s:e] for r in rows for s, e in [self.spans[id(r)]]])
        self.categories = {
            id(r): category_of(r.question[s:e]) for r in rows for s, e in [self.spans[id(r)]]
        }
        cat_subjects: dict[str, list[str]] = {}
        rel_subjects: dict[str, list[str]] = {}
        for r in rows:
            cat_subjects.setdefault(self.categories[id(r)], []).append(r.subject)
            rel_subjects.setdefault(r.relation, []).append(r.subject)
        self.cat_pools = {k: Pool(v) for k, v in cat_subjects.items()}
        self.rel_pools = {k: Pool(v) for k, v in rel_subjects.items()}
        self.answer_pool = Pool([a for r in rows for a in r.answers])
        self.initials = sorted(
            {a.strip()[0].upper() for r in rows for a in r.answers if ascii_letter(a)}
        )
        self.by_relation: dict[str, list[str]] = {}
        for r in rows:
            self.by_relation.setdefault(r.relation, []).extend(r.answers)

    def rng(self, *parts: object) -> random.Random:
        return random.Random(derive(self.seed, "annotate", self.split, *parts))

    def run(self) -> list[dict]:
        out: list[dict] = []
        for r in self.rows:
            rec = self.single(r)
            if rec is None:
                continue
            out.append(rec)
            self.report.kept += 1
            if not self.multi:
                continue
            multi = multi_variant(self, r, rec)
            if multi is not None:
                out.append(multi)
                self.report.note("multi-constraint variant added")
        return out

    def single(self, r: RealRow) -> dict | None:
        """The single-constraint record of row `r`, or None (dropped in the report)."""
        split = self.split
        start, end = self.spans[id(r)]
        if start >= end:
            self.report.drop(r.index, "empty constraint span after trimming")
            return None
        span_text = r.question[start:end]
        if split != "okvqa" and not r.subject:
            self.report.drop(r.index, "no subject for the text form")
            return None
        rng = self.rng(r.index)
        if split == "okvqa":
            repl = self.span_texts.pick(span_text, rng)
            repl = match_case(repl, span_text) if repl else repl
        else:
            repl = self.subject_replacement(r, span_text, rng)
        if repl is None:
            self.report.drop(r.index, "no replacement candidate in the split")
            return None
        constraints = [span_record(r.question, start, end, "visual", repl)]
        if split == "okvqa":
            text_q, text_constraints = r.question, [dict(constraints[0])]
        else:
            text_q = r.question[:start] + r.subject + r.question[end:]
            t_repl = self.subject_replacement(r, r.subject, self.rng(r.index, "text"))
            text_constraints = [
                span_record(text_q, start, start + len(r.subject), "visual", t_repl or repl)
            ]
        para, text_para = question_paraphrases(split, r, start, end, self.report)
        entity_id = str(r.meta.get("image_id", "")) if split == "okvqa" else slug(r.subject)
        category = (
            category_of(span_text) if split == "known" else SPLIT_CATEGORY.get(split, "object")
        )
        return {
            "qid": f"{split}-{r.index:05d}",
            "split": split,
            "entity_id": entity_id or slug(span_text),
            "category": category,
            "relation": r.relation or split,
            "question": r.question,
            "subject": r.subject,
            "main_entity": span_text,
            "image_url": r.image,
            "answer": r.answers[0],
            "answers": list(r.answers),
            "constraint_type": "single",
            "constraints": constraints,
            "paraphrases": para,
            "text_question": text_q,
            "text_constraints": text_constraints,
            "text_paraphrases": text_para,
            "held_out": split == "heldout",
        }

    def subject_replacement(self, r: RealRow, phrase: str, rng: random.Random) -> str | None:
        """Another subject for `phrase`: from rows of the same category (Known: the
        constraint noun), then of the same relation, then any row, taking the first pool with a
        candidate of the phrase's word count (the nearest word count from all rows otherwise)."""
        banned = {phrase.lower().strip(), r.subject.lower().strip()}
        n = nwords(phrase)
        for pool in (self.cat_pools[self.categories[id(r)]], self.rel_pools[r.relation]):
            if pool.has(n, banned):
                return pool.pick(phrase, rng, exclude=[r.subject])
        return self.subjects.pick(phrase, rng, exclude=[r.subject])


def annotate(
    split: str,
    rows: list[RealRow],
    seed: int,
    *,
    multi: bool = True,
    complete_spans: bool = True,
    report: Report | None = None,
) -> list[dict]:
    """Question records for `dataset.write_split` (rules: module docstring). Rows that cannot
    be annotated and multi-constraint variants that are skipped are counted in `report` (a new
    one when None), which is logged."""
    if split not in ("known", "movies", "okvqa", "heldout"):
        raise ValueError(f"unknown split {split!r}")
    report = report if report is not None else Report(f"annotate[{split}]")
    records = Annotator(split, rows, seed, report, multi=multi, complete_spans=complete_spans).run()
    log.info("%s", report.summary())
    return records


def human_answers(split: str, rows: list[RealRow]) -> dict[str, list[str]]:
    """qid -> the annotators' answers (OK-VQA: 10 each), for VQA accuracy. QuestionRecord has no
    field for them, so callers store this table next to the split CSV."""
    return {f"{split}-{r.index:05d}": list(r.human_answers) for r in rows if r.human_answers}
