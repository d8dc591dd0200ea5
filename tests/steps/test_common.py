"""The steps' shared selection: samples that keep a split's proportions and shards that cover
them."""

from __future__ import annotations

from mmtrace.steps.common import sample_evenly, shard_of


def test_even_sample_keeps_the_tail_of_an_ordered_split():
    """A split ordered single-then-multi (as the toy CSVs are) keeps its share of multis."""
    split = ["single"] * 364 + ["multi"] * 56
    sample = sample_evenly(split, 150)
    assert len(sample) == 150
    assert sample.count("multi") == 20  # 56 / 420 of 150
    assert sample_evenly(split, None) == split and sample_evenly(split[:5], 9) == split[:5]


def test_shards_are_disjoint_and_cover_the_sample():
    items = list(range(101))
    sample = sample_evenly(items, 40)
    assert len(set(sample)) == 40 and sample == sorted(sample)
    shards = [shard_of(items, i, 3, 40) for i in range(3)]
    assert sorted(x for s in shards for x in s) == sample
    assert not set(shards[0]) & set(shards[1])
