"""Constraint annotation of the real splits: loaded rows (`realdata.RealRow`) -> question records.

`annotate(split, rows, seed)` returns dicts with every field of `dataset.QuestionRecord`, for
`dataset.write_split`. It follows the toy world's conventions (`toyworld/world.py`): the visual
span's `replacement` is another entity of the same split, the text form replaces the visual
constraint by the subject's name (span type stays "visual": it is the entity slot), and a
multi-constraint record adds a "textual" span, at the same place in both forms, whose replacement
is a wrong value of the same kind. The rules, so that results can be traced back to them:

Visual span. The release's `main_entity` span, trimmed of surrounding punctuation and a
possessive "'s" (the tracing and editing code works at the span's last token, which should be
the noun, not a comma). Known only (`complete_spans`): a span cut after its first words ("This
video" in "This video game is developed by") is extended over at most two following words when
the rest of the question then equals the rest of the fact's known_1000 prompt after the subject
("Yakuza 2 is developed by").

Category. Known: the span without its determiner, lower case ("This building" -> "building");
Movies "director"; OK-VQA "object"; heldout (E-VQA) "landmark".

Relation. Known: known_1000 `relation_id`; Movies "directed"; OK-VQA the annotation's
`question_type` (or "okvqa"); heldout the E-VQA subset's question keyword ("country").

Corruption (`replacement`). Chosen with a seeded generator per (seed, split, row, slot), from
other rows of the same split: their subjects (Known, Movies, heldout) or their visual spans
(OK-VQA, which has no subjects), never the row's own. Subjects come from rows of the same
category (Known: the constraint noun, so a city is replaced by a city), else the same relation,
else any row: the first of these pools that has a candidate with the span's word count. Within
a pool candidates are ranked by (same number of words as the span, same first word), and one is
drawn from the best non-empty tier; if no candidate has the same word count, the nearest word
count is used. In the text form the span is
the subject, so its replacement is drawn the same way for the subject's word count. (The tracing
engine fits the token length exactly; this only gives it a close start.)

Paraphrases (two per question). Known: `KNOWN_TEMPLATES` per known_1000 relation_id (all 33
relations in known_1000 have templates: P17 P19 P20 P27 P30 P36 P37 P39 P101 P103 P106 P108
P127 P131 P136 P138 P140 P159 P176 P178 P190 P276 P364 P407 P413 P449 P463 P495 P641 P740 P937
P1303 P1412); any other relation falls back to `GENERIC_TEMPLATES`. Movies: two fixed
alternatives. OK-VQA: `GENERIC_TEMPLATES` applied to the question. heldout: two country
templates when the subset asks for a country, else the generic ones. The text paraphrases use
the subject where the image paraphrases use "this <noun>".

Text form (LLM baseline). The visual span is replaced by the subject ("This building is located
in" -> "Space Needle is located in"). OK-VQA has no subject: the text question is the question
as is (the LLM answers blind), and its text constraint is the same span with the same
replacement, so text tracing corrupts the same words.

Multi-constraint variants (qid suffix "-multi", constraint_type "multi", a second span of type
"textual"):
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
Every skip is counted in the report's notes; rows that cannot be annotated are dropped there
with their reason.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence

from mmtrace.realdata import RealRow, Report
from mmtrace.seeding import derive

log = logging.getLogger(__name__)

SPLIT_CATEGORY = {"movies": "director", "okvqa": "object", "heldout": "landmark"}
DETERMINERS = ("this", "these", "that", "those", "the")

# Two paraphrase templates per known_1000 relation; "{c}" is the entity ("this building" for
# the image question, the subject for the text question).
KNOWN_TEMPLATES: dict[str, tuple[str, str]] = {
    "P17": ("{c} is situated in the country of", "The country where {c} is located is"),
    "P19": ("{c} was born in the place called", "The birthplace of {c} is"),
    "P20": ("{c} passed away in the city of", "The place where {c} died is"),
    "P27": ("{c} is a citizen of", "The country of citizenship of {c} is"),
    "P30": ("{c} lies on the continent of", "The continent where {c} is located is"),
    "P36": ("The capital city of {c} is", "The seat of government of {c} is"),
    "P37": ("The official language of {c} is", "The language officially used in {c} is"),
    "P39": ("{c} holds the position of", "The position held by {c} is"),
    "P101": ("{c} works in the field of", "The field of work of {c} is"),
    "P103": ("The native language of {c} is", "The mother tongue of {c} is"),
    "P106": ("{c} works as a", "The profession of {c} is"),
    "P108": ("{c} is employed by", "The employer of {c} is"),
    "P127": ("{c} is owned by", "The owner of {c} is"),
    "P131": ("{c} lies in the region of", "The administrative area that contains {c} is"),
    "P136": ("{c} is known for the genre of", "The genre associated with {c} is"),
    "P138": ("{c} is named after", "The name of {c} comes from"),
    "P140": ("{c} follows the religion of", "The religion of {c} is"),
    "P159": ("{c} has its headquarters in", "The headquarters of {c} are in"),
    "P176": ("{c} is manufactured by", "The manufacturer of {c} is"),
    "P178": ("{c} was developed by", "The developer of {c} is"),
    "P190": ("{c} is twinned with", "The sister city of {c} is"),
    "P276": ("{c} is located in", "The location of {c} is"),
    "P364": ("The original language of {c} is", "{c} was originally made in the language"),
    "P407": ("{c} is written in the language", "The language of {c} is"),
    "P413": ("{c} plays in the position of", "The playing position of {c} is"),
    "P449": ("{c} was originally aired on", "The original network of {c} is"),
    "P463": ("{c} is a member of", "The organisation that {c} belongs to is"),
    "P495": ("{c} comes from the country of", "The country of origin of {c} is"),
    "P641": ("{c} is associated with the sport of", "The sport played by {c} is"),
    "P740": ("{c} was formed in", "The place where {c} was founded is"),
    "P937": ("{c} worked in the city of", "The place where {c} worked is"),
    "P1303": ("{c} plays the instrument", "The instrument played by {c} is the"),
    "P1412": ("{c} speaks the language", "A language spoken by {c} is"),
}
# Fallback rephrasings of a whole question ("{q}": first letter lower-cased).
GENERIC_TEMPLATES = ("Tell me, {q}", "I would like to know: {q}")
MOVIE_TEMPLATES = ("Which movie did {c} direct?", "Give the title of a film directed by {c}?")
MOVIE_MULTI_TEMPLATES = (
    "Which movie whose title begins with {t} did {c} direct?",
    "Give the title of a film directed by {c} that begins with {t}?",
)
COUNTRY_TEMPLATES = ("In which country is {c} located?", "{c} can be found in which country?")
# Relative clauses stating a second known_1000 fact ("{a}": the attribute).
KNOWN_CLAUSES: dict[str, str] = {
    "P17": "located in {a}",
    "P19": "born in {a}",
    "P20": "who died in {a}",
    "P27": "a citizen of {a}",
    "P30": "located in {a}",
    "P36": "whose capital is {a}",
    "P37": "whose official language is {a}",
    "P101": "who works in {a}",
    "P103": "whose native language is {a}",
    "P106": "who works as a {a}",
    "P108": "employed by {a}",
    "P127": "owned by {a}",
    "P131": "located in {a}",
    "P136": "known for {a}",
    "P138": "named after {a}",
    "P140": "affiliated with {a}",
    "P159": "headquartered in {a}",
    "P176": "made by {a}",
    "P178": "developed by {a}",
    "P276": "located in {a}",
    "P364": "originally in {a}",
    "P407": "written in {a}",
    "P449": "first aired on {a}",
    "P463": "a member of {a}",
    "P495": "which originated in {a}",
    "P641": "who plays {a}",
    "P740": "formed in {a}",
    "P937": "who worked in {a}",
    "P1303": "who plays the {a}",
    "P1412": "who speaks {a}",
}


def slug(text: str) -> str:
    """A normalised entity id: lower case, runs of non-word characters -> '-'."""
    return re.sub(r"[\W_]+", "-", text.lower()).strip("-") or "unknown"


def _nwords(text: str) -> int:
    return len(text.split())


def _first_word(text: str) -> str:
    return text.split()[0].lower() if text.split() else ""


class Pool:
    """Replacement candidates indexed by word count and (word count, first word), so that a
    pick costs O(1) on average (a split has thousands of rows)."""

    def __init__(self, candidates: Sequence[str]):
        self.items = sorted({c.strip() for c in candidates if c and c.strip()})
        self.by_n: dict[int, list[str]] = {}
        self.by_nf: dict[tuple[int, str], list[str]] = {}
        for c in self.items:
            self.by_n.setdefault(_nwords(c), []).append(c)
            self.by_nf.setdefault((_nwords(c), _first_word(c)), []).append(c)

    def has(self, n: int, banned: set[str]) -> bool:
        return any(c.lower() not in banned for c in self.by_n.get(n, ())[: 2 * len(banned) + 1])

    def pick(self, phrase: str, rng: random.Random, exclude: Sequence[str] = ()) -> str | None:
        """Rule in the module docstring: same word count and first word, else same word count,
        else the nearest word count; never `phrase` or `exclude` (case-insensitive)."""
        banned = {phrase.lower().strip(), *(e.lower().strip() for e in exclude)}
        n = _nwords(phrase)
        tiers = [self.by_nf.get((n, _first_word(phrase)), []), self.by_n.get(n, [])]
        for d in sorted({abs(k - n) for k in self.by_n if k != n}):
            tiers.append([c for k, v in sorted(self.by_n.items()) if abs(k - n) == d for c in v])
        for tier in tiers:
            allowed = [c for c in tier[: 2 * len(banned) + 1] if c.lower() not in banned]
            if not allowed:
                continue
            while True:  # at most len(banned) rejections: banned items are few
                choice = rng.choice(tier)
                if choice.lower() not in banned:
                    return choice
        return None


def pick_replacement(
    phrase: str, candidates: Sequence[str], rng: random.Random, exclude: Sequence[str] = ()
) -> str | None:
    """A corruption for `phrase` from `candidates` (see `Pool.pick`)."""
    return Pool(candidates).pick(phrase, rng, exclude)


def _ascii_letter(title: str) -> bool:
    """True when a title starts with a letter A-Z (the letter constraint names one of those)."""
    return bool(re.match(r"[A-Za-z]", title.strip()))


def _match_case(replacement: str, original: str) -> str:
    """Give a common-noun replacement the capitalisation of the phrase it replaces."""
    if not replacement or not original:
        return replacement
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    if replacement.split()[0].lower() in DETERMINERS:
        return replacement[0].lower() + replacement[1:]
    return replacement


def trim_span(question: str, start: int, end: int) -> tuple[int, int]:
    """Drop surrounding whitespace/punctuation and a final possessive from a span."""
    while start < end and not question[start].isalnum():
        start += 1
    while end > start and not question[end - 1].isalnum():
        end -= 1
    text = question[start:end]
    for suffix in ("'s", "\u2019s"):
        if text.endswith(suffix) and len(text) > len(suffix):
            end -= len(suffix)
            while end > start and not question[end - 1].isalnum():
                end -= 1
            break
    return start, end


def complete_known_span(question: str, end: int, subject: str, prompt: str) -> int:
    """New end of a Known span cut short ("This video" | " game is developed by"): extended
    over at most two words when the question's remainder then equals the prompt's remainder
    after the subject. Returns `end` unchanged otherwise."""
    if not subject or subject not in prompt:
        return end
    tail = prompt[prompt.index(subject) + len(subject) :]
    rest = question[end:]
    if not tail.strip() or rest == tail or not rest.endswith(tail):
        return end
    extra = rest[: len(rest) - len(tail)]
    if re.fullmatch(r"( [A-Za-z][A-Za-z-]*){1,2}", extra):
        return end + len(extra)
    return end


def category_of(span_text: str) -> str:
    words = span_text.split()
    while words and words[0].lower() in DETERMINERS:
        words = words[1:]
    return " ".join(words).lower() or "object"


def _entity_phrase(span_text: str) -> str:
    """The visual constraint as used inside a sentence: "This building" -> "this building"."""
    if span_text.split()[0] in ("This", "These", "That", "Those", "The"):
        return span_text[0].lower() + span_text[1:]
    return span_text


def _fill(template: str, **kw: str) -> str:
    text = template.format(**kw)
    return text[0].upper() + text[1:] if text else text


def _lcfirst(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _span(text: str, start: int, end: int, kind: str, replacement: str) -> dict:
    return {
        "text": text[start:end],
        "start": start,
        "end": end,
        "type": kind,
        "replacement": replacement,
    }


def _insert_after(text: str, pos: int, clause: str) -> tuple[str, int]:
    """Insert ", <clause>," after position `pos` (the comma after it is dropped when the text
    already has punctuation there); returns the new text and the clause's start."""
    rest = text[pos:]
    closing = "" if (not rest or rest[0] in ",?.!;:") else ","
    new = text[:pos] + ", " + clause + closing + rest
    return new, pos + 2


class _Annotator:
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
            {a.strip()[0].upper() for r in rows for a in r.answers if _ascii_letter(a)}
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
            multi = self.multi_variant(r, rec)
            if multi is not None:
                out.append(multi)
                self.report.note("multi-constraint variant added")
        return out

    # -- single-constraint record ---------------------------------------------------------
    def single(self, r: RealRow) -> dict | None:
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
            repl = _match_case(repl, span_text) if repl else repl
        else:
            repl = self.subject_replacement(r, span_text, rng)
        if repl is None:
            self.report.drop(r.index, "no replacement candidate in the split")
            return None
        constraints = [_span(r.question, start, end, "visual", repl)]
        if split == "okvqa":
            text_q, text_constraints = r.question, [dict(constraints[0])]
        else:
            text_q = r.question[:start] + r.subject + r.question[end:]
            t_repl = self.subject_replacement(r, r.subject, self.rng(r.index, "text"))
            text_constraints = [
                _span(text_q, start, start + len(r.subject), "visual", t_repl or repl)
            ]
        para, text_para = self.paraphrases(r, span_text)
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
        n = _nwords(phrase)
        for pool in (self.cat_pools[self.categories[id(r)]], self.rel_pools[r.relation]):
            if pool.has(n, banned):
                return pool.pick(phrase, rng, exclude=[r.subject])
        return self.subjects.pick(phrase, rng, exclude=[r.subject])

    def paraphrases(self, r: RealRow, span_text: str) -> tuple[list[str], list[str]]:
        c = _entity_phrase(span_text)
        if self.split == "known":
            templates = KNOWN_TEMPLATES.get(r.relation)
            if templates is None:
                self.report.note("Known relation without paraphrase templates (generic used)")
        elif self.split == "movies":
            templates = MOVIE_TEMPLATES
        elif self.split == "heldout" and r.relation == "country":
            templates = COUNTRY_TEMPLATES
        else:
            templates = None
        if templates is None:
            q = _lcfirst(r.question)
            para = [_fill(t, q=q) for t in GENERIC_TEMPLATES]
            if self.split == "okvqa":
                return para, list(para)
            start, end = self.spans[id(r)]
            tq = r.question[:start] + r.subject + r.question[end:]
            tq = tq if start == 0 else _lcfirst(tq)  # a leading name keeps its capital
            return para, [_fill(t, q=tq) for t in GENERIC_TEMPLATES]
        return [_fill(t, c=c) for t in templates], [_fill(t, c=r.subject) for t in templates]

    # -- multi-constraint variants ----------------------------------------------------------
    def multi_variant(self, r: RealRow, rec: dict) -> dict | None:
        if self.split == "movies":
            return self.movie_multi(r, rec)
        if self.split == "known":
            return self.known_multi(r, rec)
        self.report.note(f"no multi-constraint rule for {self.split}")
        return None

    def _multi_record(
        self, rec: dict, textual: tuple[str, str], image_form: tuple[str, int, list[str]],
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
                _span(question, t_start, t_start + len(t_text), "textual", t_repl),
            ],
            "paraphrases": para,
            "text_question": text_q,
            "text_constraints": [
                dict(rec["text_constraints"][0]),
                _span(text_q, tt_start, tt_start + len(t_text), "textual", t_repl),
            ],
            "text_paraphrases": text_para,
        }

    def movie_multi(self, r: RealRow, rec: dict) -> dict | None:
        titles = [a for a in r.answers if _ascii_letter(a)]
        if not titles:
            self.report.note("no multi-constraint variant: no title starts with a letter A-Z")
            return None
        letter = titles[0].strip()[0].upper()
        answers = [a for a in r.answers if a.strip()[:1].upper() == letter]
        if len(answers) == len(r.answers):
            self.report.note("no multi-constraint variant: the letter would not narrow")
            return None
        own = {a.strip()[0].upper() for a in r.answers if a.strip()}
        free = [x for x in self.initials if x not in own]
        if not free:
            self.report.note("no multi-constraint variant: no free letter for the replacement")
            return None
        t_text = f"the letter {letter}"
        t_repl = f"the letter {self.rng(r.index, 'letter').choice(free)}"
        clause = f" whose title begins with {t_text}"

        def add(q: str) -> tuple[str, int]:
            body = q[:-1] if q.endswith("?") else q
            return body + clause + q[len(body) :], len(body) + len(clause) - len(t_text)

        question, t_start = add(rec["question"])
        text_q, tt_start = add(rec["text_question"])
        c = _entity_phrase(rec["main_entity"])
        para = [_fill(t, c=c, t=t_text) for t in MOVIE_MULTI_TEMPLATES]
        text_para = [_fill(t, c=r.subject, t=t_text) for t in MOVIE_MULTI_TEMPLATES]
        return self._multi_record(
            rec, (t_text, t_repl), (question, t_start, para), (text_q, tt_start, text_para), answers
        )

    def known_multi(self, r: RealRow, rec: dict) -> dict | None:
        others = [o for o in r.meta.get("others", []) if o["relation"] in KNOWN_CLAUSES]
        if not others:
            reason = "subject has one fact" if not r.meta.get("others") else "no clause template"
            self.report.note(f"no multi-constraint variant: {reason}")
            return None
        vis, tvis = rec["constraints"][0], rec["text_constraints"][0]
        if rec["question"][vis["end"] :].startswith(("'s", "\u2019s")):
            self.report.note("no multi-constraint variant: possessive constraint")
            return None
        others = [o for o in others if o["attribute"].lower() not in map(str.lower, r.answers)]
        if not others:
            self.report.note("no multi-constraint variant: the other fact gives the answer away")
            return None
        fact = others[0]
        attr = fact["attribute"]
        rng = self.rng(r.index, "clause")
        t_repl = pick_replacement(attr, self.by_relation.get(fact["relation"], []), rng)
        if t_repl is None or _nwords(t_repl) != _nwords(attr):
            t_repl = self.answer_pool.pick(attr, rng) or t_repl
        if t_repl is None:
            self.report.note("no multi-constraint variant: no replacement attribute")
            return None
        clause = KNOWN_CLAUSES[fact["relation"]].format(a=attr)
        offset = clause.index(attr)
        question, c_start = _insert_after(rec["question"], vis["end"], clause)
        text_q, tc_start = _insert_after(rec["text_question"], tvis["end"], clause)
        c = _entity_phrase(rec["main_entity"]) + ", " + clause + ","
        templates = KNOWN_TEMPLATES.get(r.relation)
        if templates is None:
            para = [_fill(t, q=_lcfirst(question)) for t in GENERIC_TEMPLATES]
            tq = text_q if tvis["start"] == 0 else _lcfirst(text_q)
            text_para = [_fill(t, q=tq) for t in GENERIC_TEMPLATES]
        else:
            para = [_fill(t, c=c) for t in templates]
            text_para = [_fill(t, c=f"{r.subject}, {clause},") for t in templates]
        return self._multi_record(
            rec,
            (attr, t_repl),
            (question, c_start + offset, para),
            (text_q, tc_start + offset, text_para),
            list(rec["answers"]),
        )


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
    records = _Annotator(
        split, rows, seed, report, multi=multi, complete_spans=complete_spans
    ).run()
    log.info("%s", report.summary())
    return records


def human_answers(split: str, rows: list[RealRow]) -> dict[str, list[str]]:
    """qid -> the annotators' answers (OK-VQA: 10 each), for VQA accuracy. QuestionRecord has no
    field for them, so callers store this table next to the split CSV."""
    return {f"{split}-{r.index:05d}": list(r.human_answers) for r in rows if r.human_answers}
