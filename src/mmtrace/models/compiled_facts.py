"""What the compiled control knows, derived from the world's data: categories, relations,
answer pools, the visual-constraint nouns, and the relation filters over the question's words
(see `mmtrace.models.compiled` for how they are wired)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mmtrace.dataset import QuestionRecord
from mmtrace.models.scoring import first_answer_token
from mmtrace.prompts import build as build_prompt


@dataclass
class Facts:
    """What the compiled model knows, derived from the world: categories, relations, pools."""

    categories: list[str]
    relations: list[str]  # single-constraint relations, in name order
    slot: dict[tuple[str, str], int]  # (category, relation) -> slot index
    pools: dict[tuple[str, str], list[str]]  # (category, relation) -> answers
    known: dict[tuple[str, str], str]  # (entity id, relation) -> answer, held-out entities excluded
    answer_ids: dict[str, int]  # answer -> first answer token id
    vc_ids: list[int]  # the visual-constraint nouns' token ids

    @property
    def slot_offsets(self) -> list[int]:
        """Where each slot starts in the `slot` block: slot j is as wide as the largest answer
        pool of a relation in slot j (an answer is stored as its index in the pool)."""
        widths = [0] * (1 + max(self.slot.values()))
        for key, j in self.slot.items():
            widths[j] = max(widths[j], len(self.pools[key]))
        return [sum(widths[:j]) for j in range(len(widths) + 1)]

    def slot_dim(self, category: str, relation: str, answer: str) -> int:
        key = (category, relation)
        return self.slot_offsets[self.slot[key]] + self.pools[key].index(answer)


def facts_of(records: list[QuestionRecord], entities: list[dict], tok, template: str) -> Facts:
    """The facts of the single-constraint questions: each (entity, relation) is answered by its
    question's gold answer (the edit target of the editing scenarios)."""
    single = [r for r in records if r.constraint_type == "single"]
    cats = sorted({e["category"] for e in entities})
    rel_of_cat: dict[str, set[str]] = defaultdict(set)
    pools: dict[tuple[str, str], set[str]] = defaultdict(set)
    known: dict[tuple[str, str], str] = {}
    for r in single:  # held-out entities' facts are removed below
        rel_of_cat[r.category].add(r.relation)
        pools[(r.category, r.relation)].add(r.answer)
        clash = known.setdefault((r.entity_id, r.relation), r.answer) != r.answer
        if clash and not r.held_out:
            raise ValueError(f"{r.entity_id} {r.relation}: two answers in the data")
    held = {r.entity_id for r in single if r.held_out}
    known = {k: v for k, v in known.items() if k[0] not in held}
    answer_ids: dict[str, int] = {}
    vc_ids: set[int] = set()
    for r in single:
        prompt = build_prompt(template, r.question)
        for a in r.answers:
            answer_ids.setdefault(a, first_answer_token(tok, prompt.text, a))
        _start, end = prompt.shift(r.visual_span.start, r.visual_span.end)
        enc = tok(prompt.text, return_offsets_mapping=True)
        last = max(i for i, (s, e) in enumerate(enc["offset_mapping"]) if s < end and e > s)
        vc_ids.add(enc["input_ids"][last])
    for (_c, _r), pool in pools.items():
        for a in pool:
            if a not in answer_ids:
                answer_ids[a] = first_answer_token(tok, build_prompt(template, "x").text, a)
    slot = {(c, rel): j for c in cats for j, rel in enumerate(sorted(rel_of_cat[c]))}
    return Facts(
        categories=cats,
        relations=sorted({r.relation for r in single}),
        slot=slot,
        pools={k: sorted(v) for k, v in pools.items()},
        known=known,
        answer_ids=answer_ids,
        vc_ids=sorted(vc_ids),
    )


def template_texts(records: list[QuestionRecord], template: str) -> list[tuple[str, str]]:
    """(prompt, relation) of every single-constraint phrasing in the data."""
    out = []
    for r in records:
        if r.constraint_type == "single":
            out += [
                (build_prompt(template, q).text, r.relation) for q in [r.question, *r.paraphrases]
            ]
    return out


def bow_vocabulary(tok, records, texts, vc_ids: list[int]) -> list[int]:
    """Token ids that vote in the bag of words: words of the question templates, except the
    prompt's boilerplate (in every prompt), the visual-constraint phrases and every entity name
    (a corrupted constraint is another entity's name: it must not change the relation read)."""
    counts: dict[int, int] = defaultdict(int)
    for prompt, _ in texts:
        for t in set(tok(prompt)["input_ids"]):
            counts[t] += 1
    excluded = set(vc_ids) | {tok.bos_token_id}
    for r in records:
        for s in r.constraints:
            excluded |= set(tok(r.question[s.start : s.end], add_special_tokens=False)["input_ids"])
            excluded |= set(tok(" " + s.replacement, add_special_tokens=False)["input_ids"])
            excluded |= set(tok(s.replacement, add_special_tokens=False)["input_ids"])
        excluded |= set(tok(" " + r.subject, add_special_tokens=False)["input_ids"])
    return sorted(t for t, n in counts.items() if n < len(texts) and t not in excluded)


def relation_filters(
    tok, texts: list[tuple[str, str]], bow_ids: list[int], relations: list[str]
) -> list[tuple[np.ndarray, float, str]]:
    """(weights w over the bag's tokens, the smallest positive score, relation) per relation:
    w . counts >= 1 for every phrasing of the relation in the data and <= -1 for every other
    phrasing (a linear programme minimising |w|_1). The bag at the last token is counts / n
    (n: the prompt's length with its visual tokens), so the score keeps its sign there."""
    from scipy.optimize import linprog

    index = {t: i for i, t in enumerate(bow_ids)}
    rows: dict[tuple, str] = {}
    for prompt, rel in texts:
        counts = np.zeros(len(bow_ids))
        for t in tok(prompt)["input_ids"]:
            if t in index:
                counts[index[t]] += 1
        key = tuple(counts)
        if rows.setdefault(key, rel) != rel:
            raise ValueError(f"the same words ask two relations ({rows[key]}, {rel}): {prompt!r}")
    x = np.array(list(rows))
    labels = list(rows.values())
    n = x.shape[1]
    out = []
    for rel in relations:
        sign = np.array([1.0 if r == rel else -1.0 for r in labels])
        # variables: w+ and w- (w = w+ - w-), minimise their sum; -sign * (x @ w) <= -1
        a_ub = -sign[:, None] * np.hstack([x, -x])
        res = linprog(
            np.ones(2 * n), A_ub=a_ub, b_ub=-np.ones(len(x)), bounds=(0, None), method="highs"
        )
        if not res.success:
            raise ValueError(f"relation {rel!r}: its phrasings are not separable by their words")
        w = res.x[:n] - res.x[n:]
        out.append((w, 1.0, rel))
    return out


def end_token(tok, template: str) -> int:
    """The prompt's final token, from the template after the question (the default prompt's
    ":" of "ASSISTANT:"): the flag that tells the last token apart in layer 0, where a query
    sees only its own token. The same token may also occur earlier in the prompt (the ":" of
    "USER:"); a reader there comes before the question and reads nothing the answer uses."""
    ids = {tok(build_prompt(template, q).text)["input_ids"][-1] for q in ("a", "b c")}
    if len(ids) != 1:
        raise ValueError(f"the prompt template {template!r} must end after the question")
    return ids.pop()


def name_vocabulary(tok, records, texts) -> list[int]:
    """Token ids of the world's names (every entity's name and every replacement phrase of a
    visual constraint: what a token corruption writes over the constraint) that no clean
    single-constraint prompt contains: a name among them in a prompt tells that the entity is
    named in words, not shown ("Senbix fruit" written over "this fruit")."""
    names: set[int] = set()
    for r in records:
        phrases = [r.subject, *(s.replacement for s in r.constraints if s.type == "visual")]
        for phrase in phrases:
            for text in (phrase, " " + phrase):
                names |= set(tok(text, add_special_tokens=False)["input_ids"])
    clean: set[int] = set()
    for prompt, _ in texts:
        clean |= set(tok(prompt)["input_ids"])
    special = set(tok.all_special_ids)
    return sorted(names - clean - special)
