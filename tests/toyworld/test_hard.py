"""The hard split (F3b/F4's evaluation set, docs/method.md §5): hard renderings are deterministic
and leave the ordinary ones untouched; the generated world holds the hard split, copies of the
analysed splits' questions with unique ids and their own images; the planted world leaves it
out."""

from __future__ import annotations

import numpy as np
import pytest

from mmtrace.config import HardSplitCfg
from mmtrace.dataset import load_split
from mmtrace.toyworld.generate import HARD_SPLIT, generate, hard_questions
from mmtrace.toyworld.images import render, render_hard, render_with_mask
from mmtrace.toyworld.world import FAMILIES, build_world

ATTRS = {"shape": "star", "color": "blue", "background": "dots"}
SIZES = dict(n_known=10, n_movies=5, n_okvqa=10, n_heldout=2)


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_hard_rendering_is_deterministic_and_differs_by_seed():
    cfg = HardSplitCfg()
    a = render_hard(ATTRS, 11, 48, cfg.noise, cfg.occlusion)
    b = render_hard(ATTRS, 11, 48, cfg.noise, cfg.occlusion)
    c = render_hard(ATTRS, 12, 48, cfg.noise, cfg.occlusion)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_the_options_off_give_the_ordinary_rendering():
    """The training and evaluation renderings (and so every trained model) do not change."""
    plain, mask = render_with_mask(ATTRS, 5, 48)
    same, same_mask = render_with_mask(ATTRS, 5, 48, occlusion=0.0)
    assert plain.tobytes() == same.tobytes() == render(ATTRS, 5, 48).tobytes()
    assert mask.tobytes() == same_mask.tobytes()


def test_the_occluder_covers_part_of_the_object():
    """Without noise, only the occluding box separates a hard rendering from the ordinary one,
    and it lies (at least partly) on the object's mask."""
    plain, mask = render_with_mask(ATTRS, 5, 48, noise=0.0)
    hard = render_hard(ATTRS, 5, 48, noise=0.0, occlusion=0.6)
    changed = np.any(_pixels(plain) != _pixels(hard), axis=-1)
    on_object = np.asarray(mask) > 0
    assert changed.any() and (changed & on_object).any()
    assert (changed & on_object).sum() < on_object.sum()  # part of it, not all


def test_heavier_noise_moves_pixels_further():
    quiet = _pixels(render_with_mask(ATTRS, 5, 48)[0])
    base = _pixels(render_with_mask(ATTRS, 5, 48, noise=0.0)[0])
    loud = _pixels(render_hard(ATTRS, 5, 48, noise=40.0, occlusion=0.0))
    assert np.abs(loud - base).mean() > 2 * np.abs(quiet - base).mean()


def test_hard_questions_copy_the_analysed_splits_with_unique_ids():
    _, questions = build_world(3, **SIZES)
    pool = [q for q in questions if q.split in FAMILIES]
    n = len(pool) + 7  # past the pool: the order repeats, each copy with its own id
    hard = hard_questions(questions, n, seed=3)
    assert len(hard) == n and len({q.qid for q in hard}) == n
    by_qid = {q.qid: q for q in pool}
    for q in hard:
        source = by_qid[q.qid.removeprefix(f"{HARD_SPLIT}-").rsplit("-", 1)[0]]
        assert q.split == HARD_SPLIT and not q.held_out
        assert (q.question, q.answers, q.constraints) == (
            source.question,
            source.answers,
            source.constraints,
        )
    assert {q.constraint_type for q in hard} == {"single", "multi"}
    assert {q.qid for q in hard[: len(pool)]} != {q.qid for q in hard[len(pool) :]}
    assert [q.qid for q in hard_questions(questions, n, seed=3)] == [q.qid for q in hard]


@pytest.fixture(scope="module")
def hard_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard_world")
    hard = HardSplitCfg(n=40).model_dump()
    counts = generate(out, seed=5, image_size=48, train_images_per_entity=1, hard=hard, **SIZES)
    return out, counts, hard


def test_the_generated_world_holds_the_hard_split(hard_world):
    out, counts, hard = hard_world
    records = load_split(out / f"{HARD_SPLIT}.csv")
    assert counts[HARD_SPLIT] == len(records) == hard["n"]
    assert len({r.qid for r in records}) == len(records)
    analysed = {r.qid for s in FAMILIES for r in load_split(out / f"{s}.csv")}
    assert not analysed & {r.qid for r in records}
    for r in records:
        assert r.split == HARD_SPLIT and r.qid.startswith(f"{HARD_SPLIT}-")
        assert (out / r.image_url).is_file() and r.image_url.startswith(f"images/{HARD_SPLIT}/")


def test_no_hard_split_unless_asked(tmp_path):
    counts = generate(tmp_path, seed=5, image_size=48, train_images_per_entity=1, **SIZES)
    assert HARD_SPLIT not in counts and not (tmp_path / f"{HARD_SPLIT}.csv").exists()


def test_the_planted_world_leaves_the_hard_split_out(hard_world, tmp_path):
    from mmtrace.toyworld.planted import generate_planted

    out, _, _ = hard_world
    counts = generate_planted(out, tmp_path, seed=5, patch=12)
    assert HARD_SPLIT not in counts and not (tmp_path / f"{HARD_SPLIT}.csv").exists()
    assert not (tmp_path / "images" / HARD_SPLIT).exists()
