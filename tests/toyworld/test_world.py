import collections

import numpy as np

from mmtrace.toyworld.images import render
from mmtrace.toyworld.world import build_world


def test_deterministic():
    a = build_world(3, 20, 10, 15, 4)
    b = build_world(3, 20, 10, 15, 4)
    assert [q.to_dict() for q in a[1]] == [q.to_dict() for q in b[1]]
    c = build_world(4, 20, 10, 15, 4)
    assert [e.name for e in a[0]] != [e.name for e in c[0]]


def test_entities_have_distinct_images_and_names():
    ents, _ = build_world(1, 60, 30, 40, 10)
    combos = [tuple(sorted(e.attrs.items())) for e in ents]
    assert len(set(combos)) == len(combos)
    assert len({e.name for e in ents}) == len(ents)


def test_spans_and_counterparts():
    _, qs = build_world(1, 30, 15, 20, 6)
    for q in qs:
        for s in q.constraints:
            assert q.question[s.start : s.end] == s.text
        for s in q.text_constraints:
            assert q.text_question[s.start : s.end] == s.text
        # the textual counterpart names the entity where the image question says "this ..."
        assert q.subject in q.text_question
        assert q.constraints[0].text.lower().startswith("this")
        assert q.constraints[0].replacement != q.text_constraints[0].text
        assert len(q.paraphrases) == len(q.text_paraphrases) >= 1


def test_multi_constraint_answers_are_unique():
    ents, qs = build_world(2, 30, 15, 20, 6)
    by_entity = collections.defaultdict(list)
    for q in qs:
        if q.constraint_type == "multi":
            by_entity[q.entity_id].append(q)
            textual = [s for s in q.constraints if s.type == "textual"]
            assert len(textual) == 1 and textual[0].replacement != textual[0].text
    assert by_entity
    for group in by_entity.values():
        firsts = [q.answer.split()[0] for q in group]
        assert len(set(firsts)) == len(firsts)


def test_held_out_entities_are_separate():
    ents, qs = build_world(1, 30, 15, 20, 6)
    held = {e.id for e in ents if e.held_out}
    assert len(held) == 6
    assert {q.split for q in qs if q.entity_id in held} == {"heldout"}
    assert all(not q.held_out for q in qs if q.entity_id not in held)


def test_renderings_vary_but_are_reproducible():
    attrs = {"shape": "star", "color": "red", "background": "dots"}
    a = np.asarray(render(attrs, 1))
    assert np.array_equal(a, np.asarray(render(attrs, 1)))
    assert not np.array_equal(a, np.asarray(render(attrs, 2)))
    other = np.asarray(render({**attrs, "color": "blue"}, 1)).astype(int)
    assert np.abs(a.astype(int) - other).mean() > 5


def test_object_masks_mark_the_drawn_shape(tiny_world):
    """The mask is the renderer's own record of the shape: the rendering is unchanged by
    drawing it, its pixels carry the entity's colour (before jitter and noise), and its patch
    coverage is the per-patch mean of the mask."""
    import csv

    from PIL import Image

    from mmtrace.toyworld.images import mask_path, patch_coverage, render_with_mask
    from mmtrace.toyworld.vocab import COLORS

    attrs = {"shape": "square", "color": "red", "background": "plain"}
    image, mask = render_with_mask(attrs, 11, 48)
    assert np.array_equal(np.asarray(image), np.asarray(render(attrs, 11, 48)))
    m = np.asarray(mask) > 0
    assert 0.05 < m.mean() < 0.6
    inside = np.asarray(image, dtype=float)[m].mean(axis=0)
    assert np.abs(inside - np.array(COLORS["red"])).max() < 30
    with open(tiny_world / "known.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    path = tiny_world / row["image_url"]
    assert mask_path(path).exists()
    cover = patch_coverage(path, 4)
    full = np.asarray(Image.open(mask_path(path)), dtype=float) / 255
    assert cover.shape == (16,)
    assert np.isclose(cover.mean(), full.mean())
    assert patch_coverage(tiny_world / "no-such.png", 4) is None


def test_planted_masks_cover_the_code_strip_only(tiny_world, tmp_path):
    import csv

    from mmtrace.toyworld.images import patch_coverage
    from mmtrace.toyworld.planted import generate_planted, planted_tokens

    generate_planted(tiny_world, tmp_path, seed=3, patch=12)
    with open(tmp_path / "known.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    cover = patch_coverage(tmp_path / row["image_url"], 4)
    assert np.flatnonzero(cover == 1.0).tolist() == planted_tokens(48, 12)
    assert cover.sum() == 4
