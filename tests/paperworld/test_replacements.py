"""Corruption phrases: a replacement of the phrase's word count (and first word) when there is
one, never the phrase itself."""

from __future__ import annotations

import random

from mmtrace.paperworld.replacements import pick_replacement


def test_pick_replacement_prefers_word_count_and_never_the_own_phrase():
    rng = random.Random(0)
    cands = ["this dog", "this cat", "these birds", "plant", "this dog"]
    for _ in range(20):
        assert pick_replacement("this dog", cands, rng) == "this cat"
    assert pick_replacement("Peru", ["Peru", "Chile"], rng, exclude=[]) == "Chile"
    assert pick_replacement("Space Needle", ["Peru"], rng) == "Peru"  # nearest word count
    assert pick_replacement("Peru", ["peru"], rng) is None
