"""Seeded generation of toy-world entities, facts and constraint-annotated questions."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field

from mmtrace.toyworld import vocab
from mmtrace.toyworld.vocab import CATEGORIES, Category

FAMILIES = ("known", "movies", "okvqa")


@dataclass
class Entity:
    id: str
    family: str
    category: str
    name: str
    attrs: dict[str, str]  # shape, color, background: what its image shows
    facts: dict[str, str] = field(default_factory=dict)
    works: list[dict[str, str]] = field(default_factory=list)  # movies / products with decades
    held_out: bool = False


@dataclass
class Span:
    text: str
    start: int
    end: int
    type: str  # visual | textual
    replacement: str  # an incorrect constraint of the same kind

    def check(self, question: str) -> None:
        if question[self.start : self.end] != self.text:
            raise ValueError(f"span {self.text!r} not at [{self.start}:{self.end}] of {question!r}")


@dataclass
class Question:
    qid: str
    split: str
    entity_id: str
    category: str
    relation: str
    question: str
    main_entity: str
    answer: str
    answers: list[str]
    constraint_type: str  # single | multi
    constraints: list[Span]
    paraphrases: list[str]
    text_question: str
    text_constraints: list[Span]
    text_paraphrases: list[str]
    subject: str  # the entity's name (Known: subject, Movies: director)
    image: str = ""
    held_out: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _invent_word(rng: random.Random, n_syllables: int) -> str:
    parts = []
    for _ in range(n_syllables):
        parts.append(
            rng.choice(vocab.SYLLABLES_ONSET)
            + rng.choice(vocab.SYLLABLES_VOWEL)
            + rng.choice(vocab.SYLLABLES_CODA)
        )
    return "".join(parts).capitalize()


def _unique_names(rng: random.Random, n: int, make) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = make()
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    return names


def _fill(template: str, phrase: str, extra: dict[str, str] | None = None) -> tuple[str, int]:
    """Render `template` with the constraint phrase; return text and the phrase's start offset."""
    extra = extra or {}
    before, after = template.split("{c}")
    before = before.format(**extra)
    after = after.format(**extra)
    text = before + phrase + after
    start = len(before)
    if start == 0:
        text = text[0].upper() + text[1:]
    return text, start


def _span(text: str, start: int, length: int, kind: str, replacement: str) -> Span:
    span = Span(text[start : start + length], start, start + length, kind, replacement)
    span.check(text)
    return span


def _split_counts(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


class WorldBuilder:
    """Build entities and questions deterministically from a seed and the size settings."""

    def __init__(self, seed: int, n_known: int, n_movies: int, n_okvqa: int, n_heldout: int):
        self.rng = random.Random(seed)
        self.n = {"known": n_known, "movies": n_movies, "okvqa": n_okvqa}
        self.n_heldout = n_heldout
        self.entities: list[Entity] = []
        self.questions: list[Question] = []

    # -- entities -------------------------------------------------------------------------
    def build(self) -> tuple[list[Entity], list[Question]]:
        combos = list(itertools.product(vocab.SHAPES, sorted(vocab.COLORS), vocab.BACKGROUNDS))
        needed = sum(self.n.values()) + self.n_heldout
        if needed > len(combos):
            raise ValueError(
                f"toy_world asks for {needed} entities but only {len(combos)} distinct images "
                "(shape x colour x background) exist; lower n_known/n_movies/n_okvqa/n_heldout"
            )
        self.rng.shuffle(combos)
        combo_iter = iter(combos)
        words = _unique_names(self.rng, needed * 2, lambda: _invent_word(self.rng, 2))
        word_iter = iter(words)

        for family in FAMILIES:
            cats = [c for c in CATEGORIES if c.family == family]
            for cat, count in zip(cats, _split_counts(self.n[family], len(cats)), strict=True):
                for _ in range(count):
                    self._new_entity(cat, next(combo_iter), word_iter, held_out=False)
        # Held-out entities (long-tail insertion): landmarks whose facts no model ever sees.
        landmark_cats = [c for c in CATEGORIES if c.name in ("building", "mountain")]
        for i in range(self.n_heldout):
            self._new_entity(
                landmark_cats[i % len(landmark_cats)], next(combo_iter), word_iter, held_out=True
            )
        for ent in self.entities:
            self._questions_for(ent)
        return self.entities, self.questions

    def _new_entity(self, cat: Category, combo, word_iter, held_out: bool) -> Entity:
        shape, color, background = combo
        idx = sum(1 for e in self.entities if e.family == cat.family and e.held_out == held_out)
        prefix = "heldout" if held_out else cat.family
        if cat.family == "movies":
            name = f"{next(word_iter)} {next(word_iter)}"
        else:
            name = f"{next(word_iter)} {cat.name_suffix}".strip()
        ent = Entity(
            id=f"{prefix}-{idx:04d}",
            family=cat.family,
            category=cat.name,
            name=name,
            attrs={"shape": shape, "color": color, "background": background},
            held_out=held_out,
        )
        for rel in cat.relations:
            ent.facts[rel.name] = self.rng.choice(vocab.ANSWER_POOLS[rel.pool])
        if cat.family == "movies":
            ent.works = self._works(3, vocab.TITLE_FIRST, vocab.TITLE_SECOND)
        elif cat.name == "company":
            ent.works = self._works(2, vocab.PRODUCT_FIRST, vocab.PRODUCT_SECOND)
        self.entities.append(ent)
        return ent

    def _works(self, n: int, first: list[str], second: list[str]) -> list[dict[str, str]]:
        """Works with distinct first words and distinct decades, so each multi-constraint
        question (entity + decade) has exactly one answer with its own first token."""
        firsts = self.rng.sample(first, n)
        decades = sorted(self.rng.sample(vocab.DECADES, n))
        return [
            {"title": f"{f} {self.rng.choice(second)}", "decade": d}
            for f, d in zip(firsts, decades, strict=True)
        ]

    # -- questions ------------------------------------------------------------------------
    def _category(self, ent: Entity) -> Category:
        return next(c for c in CATEGORIES if c.name == ent.category)

    def _replacement_entity(self, ent: Entity) -> Entity:
        peers = [
            e
            for e in self.entities
            if e.category == ent.category and e.id != ent.id and not e.held_out
        ]
        return self.rng.choice(peers)

    def _text_phrase(self, cat: Category, ent: Entity) -> str:
        return cat.text_form.format(name=ent.name)

    def _add(
        self,
        ent: Entity,
        relation: str,
        template: str,
        paraphrases: tuple[str, ...],
        answer: str,
        answers: list[str],
        extra: dict[str, str] | None = None,
        textual: tuple[str, str] | None = None,  # (constraint text, replacement)
    ) -> None:
        cat = self._category(ent)
        other = self._replacement_entity(ent)
        visual = cat.constraint if template.index("{c}") == 0 else cat.constraint.lower()
        q, start = _fill(template, visual, extra)
        spans = [_span(q, start, len(visual), "visual", self._text_phrase(cat, other))]
        tphrase = self._text_phrase(cat, ent)
        tq, tstart = _fill(template, tphrase, extra)
        tspans = [_span(tq, tstart, len(tphrase), "visual", self._text_phrase(cat, other))]
        # In the text form, the visual constraint becomes the entity's name: still the
        # constraint that refers to the entity, so it keeps its role ("visual" = entity slot).
        if textual is not None:
            ttext, trepl = textual
            for text, lst in ((q, spans), (tq, tspans)):
                pos = text.rindex(ttext)
                lst.append(_span(text, pos, len(ttext), "textual", trepl))
        self.questions.append(
            Question(
                qid=f"{ent.id}-{relation}",
                split="heldout" if ent.held_out else ent.family,
                entity_id=ent.id,
                category=ent.category,
                relation=relation,
                question=q,
                main_entity=spans[0].text,
                answer=answer,
                answers=answers,
                constraint_type="multi" if textual else "single",
                constraints=spans,
                paraphrases=[_fill(p, cat.constraint.lower(), extra)[0] for p in paraphrases],
                text_question=tq,
                text_constraints=tspans,
                text_paraphrases=[_fill(p, tphrase, extra)[0] for p in paraphrases],
                subject=ent.name,
                held_out=ent.held_out,
            )
        )

    def _questions_for(self, ent: Entity) -> None:
        cat = self._category(ent)
        for rel in cat.relations:
            fact = ent.facts[rel.name]
            self._add(ent, rel.name, rel.template, rel.paraphrases, fact, [fact])
        if ent.family == "movies":
            titles = [w["title"] for w in ent.works]
            self._add(
                ent, "movie", vocab.MOVIE_SINGLE, vocab.MOVIE_SINGLE_PARAPHRASES, titles[0], titles
            )
            multi = (vocab.MOVIE_MULTI, vocab.MOVIE_MULTI_PARAPHRASES)
        elif ent.category == "company":
            multi = (vocab.PRODUCT_MULTI, vocab.PRODUCT_MULTI_PARAPHRASES)
        else:
            return
        used = {w["decade"] for w in ent.works}
        free = [d for d in vocab.DECADES if d not in used]
        for work in ent.works:
            period = f"the {work['decade']}"
            wrong = f"the {self.rng.choice(free)}"
            self._add(
                ent,
                f"work-{work['decade']}",
                multi[0],
                multi[1],
                work["title"],
                [work["title"]],
                extra={"t": period},
                textual=(period, wrong),
            )


def build_world(
    seed: int, n_known: int, n_movies: int, n_okvqa: int, n_heldout: int
) -> tuple[list[Entity], list[Question]]:
    return WorldBuilder(seed, n_known, n_movies, n_okvqa, n_heldout).build()
