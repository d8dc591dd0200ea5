"""Corruption phrases: the `replacement` of each constraint span, the wrong value the causal
trace puts in place of the constraint.

Rule. Chosen with a seeded generator per (seed, split, row, slot), from other rows of the same
split: their subjects (Known, Movies, heldout) or their visual spans (OK-VQA, which has no
subjects), never the row's own. Subjects come from rows of the same category (Known: the
constraint noun, so a city is replaced by a city), else the same relation, else any row: the
first of these pools that has a candidate with the span's word count
(`annotate.Annotator.subject_replacement`). Within a pool candidates are ranked by (same number
of words as the span, same first word), and one is drawn from the best non-empty tier; if no
candidate has the same word count, the nearest word count is used (`Pool.pick`). In the text
form the span is the subject, so its replacement is drawn the same way for the subject's word
count. (The tracing engine fits the token length exactly; this only gives it a close start.)
"""

from __future__ import annotations

import random
from collections.abc import Sequence

DETERMINERS = ("this", "these", "that", "those", "the")


def nwords(text: str) -> int:
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
            self.by_n.setdefault(nwords(c), []).append(c)
            self.by_nf.setdefault((nwords(c), _first_word(c)), []).append(c)

    def has(self, n: int, banned: set[str]) -> bool:
        return any(c.lower() not in banned for c in self.by_n.get(n, ())[: 2 * len(banned) + 1])

    def pick(self, phrase: str, rng: random.Random, exclude: Sequence[str] = ()) -> str | None:
        """Rule in the module docstring: same word count and first word, else same word count,
        else the nearest word count; never `phrase` or `exclude` (case-insensitive)."""
        banned = {phrase.lower().strip(), *(e.lower().strip() for e in exclude)}
        n = nwords(phrase)
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


def match_case(replacement: str, original: str) -> str:
    """Give a common-noun replacement the capitalisation of the phrase it replaces."""
    if not replacement or not original:
        return replacement
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    if replacement.split()[0].lower() in DETERMINERS:
        return replacement[0].lower() + replacement[1:]
    return replacement
