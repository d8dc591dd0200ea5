"""Multi-constraint variants of the real questions (qid suffix "-multi", constraint_type
"multi", a second span of type "textual", at the same place in the image and the text form,
whose replacement is a wrong value of the same kind).

Rules:
- Movies: "... directed by this director whose title begins with the letter T?", T the initial
  (A-Z) of the director's most popular such title; answers are the titles with that initial.
  Skipped when every title has the same initial (the letter would not narrow the answers), or
  when no title starts with a letter A-Z. The replacement
  is "the letter K" with K an initial of no film of this director (seeded choice among the
  initials of the other directors' films).
- Known: a second known_1000 fact of the same subject, as a clause after the constraint ("This
  country, whose capital is Lima, has the official language of"); the textual span is the
  fact's attribute, replaced by another attribute of that relation (or, failing that, any
  answer of the split with the same word count). The answer is unchanged: the clause narrows
  which entity the image can show, not the answer set. Skipped for subjects with one fact,
  relations without a clause template, a second fact whose attribute is the answer (the clause
  would give it away), and constraints followed by a possessive.
- OK-VQA and heldout: no rule (skipped, counted).
Every skip is counted in the report's notes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mmtrace.paperworld.paraphrases import (
    GENERIC_TEMPLATES,
    KNOWN_CLAUSES,
    KNOWN_TEMPLATES,
    MOVIE_MULTI_TEMPLATES,
    entity_phrase,
    fill,
    lcfirst,
)
from mmtrace.paperworld.replacements import nwords, pick_replacement
from mmtrace.paperworld.rows import RealRow
from mmtrace.paperworld.spans import span_record

if TYPE_CHECKING:
    from mmtrace.paperworld.annotate import Annotator


def ascii_letter(title: str) -> bool:
    """True when a title starts with a letter A-Z (the letter constraint names one of those)."""
    return bool(re.match(r"[A-Za-z]", title.strip()))


def _insert_after(text: str, pos: int, clause: str) -> tuple[str, int]:
    """Insert ", <clause>," after position `pos` (the comma after it is dropped when the text
    already has punctuation there); returns the new text and the clause's start."""
    rest = text[pos:]
    closing = "" if (not rest or rest[0] in ",?.!;:") else ","
    new = text[:pos] + ", " + clause + closing + rest
    return new, pos + 2


def multi_variant(ann: Annotator, r: RealRow, rec: dict) -> dict | None:
    """The multi-constraint variant of the single record `rec` of row `r`, or None (noted)."""
    if ann.split == "movies":
        return movie_multi(ann, r, rec)
    if ann.split == "known":
        return known_multi(ann, r, rec)
    ann.report.note(f"no multi-constraint rule for {ann.split}")
    return None


def _multi_record(
    rec: dict, textual: tuple[str, str], image_form: tuple[str, int, list[str]],
    text_form: tuple[str, int, list[str]], answers: list[str],
) -> dict:  # fmt: skip
    """The multi record: the single record's visual spans (text is only inserted after
    them) plus the textual span `textual` = (text, replacement), at the given start in the
    image form and the text form, each given as (question, textual start, paraphrases)."""
    t_text, t_repl = textual
    question, t_start, para = image_form
    text_q, tt_start, text_para = text_form
    return {
        **rec,
        "qid": rec["qid"] + "-multi",
        "question": question,
        "answer": answers[0],
        "answers": answers,
        "constraint_type": "multi",
        "constraints": [
            dict(rec["constraints"][0]),
            span_record(question, t_start, t_start + len(t_text), "textual", t_repl),
        ],
        "paraphrases": para,
        "text_question": text_q,
        "text_constraints": [
            dict(rec["text_constraints"][0]),
            span_record(text_q, tt_start, tt_start + len(t_text), "textual", t_repl),
        ],
        "text_paraphrases": text_para,
    }


def movie_multi(ann: Annotator, r: RealRow, rec: dict) -> dict | None:
    titles = [a for a in r.answers if ascii_letter(a)]
    if not titles:
        ann.report.note("no multi-constraint variant: no title starts with a letter A-Z")
        return None
    letter = titles[0].strip()[0].upper()
    answers = [a for a in r.answers if a.strip()[:1].upper() == letter]
    if len(answers) == len(r.answers):
        ann.report.note("no multi-constraint variant: the letter would not narrow")
        return None
    own = {a.strip()[0].upper() for a in r.answers if a.strip()}
    free = [x for x in ann.initials if x not in own]
    if not free:
        ann.report.note("no multi-constraint variant: no free letter for the replacement")
        return None
    t_text = f"the letter {letter}"
    t_repl = f"the letter {ann.rng(r.index, 'letter').choice(free)}"
    clause = f" whose title begins with {t_text}"

    def add(q: str) -> tuple[str, int]:
        body = q[:-1] if q.endswith("?") else q
        return body + clause + q[len(body) :], len(body) + len(clause) - len(t_text)

    question, t_start = add(rec["question"])
    text_q, tt_start = add(rec["text_question"])
    c = entity_phrase(rec["main_entity"])
    para = [fill(t, c=c, t=t_text) for t in MOVIE_MULTI_TEMPLATES]
    text_para = [fill(t, c=r.subject, t=t_text) for t in MOVIE_MULTI_TEMPLATES]
    return _multi_record(
        rec, (t_text, t_repl), (question, t_start, para), (text_q, tt_start, text_para), answers
    )


def known_multi(ann: Annotator, r: RealRow, rec: dict) -> dict | None:
    others = [o for o in r.meta.get("others", []) if o["relation"] in KNOWN_CLAUSES]
    if not others:
        reason = "subject has one fact" if not r.meta.get("others") else "no clause template"
        ann.report.note(f"no multi-constraint variant: {reason}")
        return None
    vis, tvis = rec["constraints"][0], rec["text_constraints"][0]
    if rec["question"][vis["end"] :].startswith(("'s", "\u2019s")):
        ann.report.note("no multi-constraint variant: possessive constraint")
        return None
    others = [o for o in others if o["attribute"].lower() not in map(str.lower, r.answers)]
    if not others:
        ann.report.note("no multi-constraint variant: the other fact gives the answer away")
        return None
    fact = others[0]
    attr = fact["attribute"]
    rng = ann.rng(r.index, "clause")
    t_repl = pick_replacement(attr, ann.by_relation.get(fact["relation"], []), rng)
    if t_repl is None or nwords(t_repl) != nwords(attr):
        t_repl = ann.answer_pool.pick(attr, rng) or t_repl
    if t_repl is None:
        ann.report.note("no multi-constraint variant: no replacement attribute")
        return None
    clause = KNOWN_CLAUSES[fact["relation"]].format(a=attr)
    offset = clause.index(attr)
    question, c_start = _insert_after(rec["question"], vis["end"], clause)
    text_q, tc_start = _insert_after(rec["text_question"], tvis["end"], clause)
    c = entity_phrase(rec["main_entity"]) + ", " + clause + ","
    templates = KNOWN_TEMPLATES.get(r.relation)
    if templates is None:
        para = [fill(t, q=lcfirst(question)) for t in GENERIC_TEMPLATES]
        tq = text_q if tvis["start"] == 0 else lcfirst(text_q)
        text_para = [fill(t, q=tq) for t in GENERIC_TEMPLATES]
    else:
        para = [fill(t, c=c) for t in templates]
        text_para = [fill(t, c=f"{r.subject}, {clause},") for t in templates]
    return _multi_record(
        rec,
        (attr, t_repl),
        (question, c_start + offset, para),
        (text_q, tc_start + offset, text_para),
        list(rec["answers"]),
    )
