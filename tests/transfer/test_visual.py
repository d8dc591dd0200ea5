"""Fig. 5 statistics on synthetic matrices with known answers, and visual -> constraint
contributions on a tiny trained toy MLLM against Eq. 1 computed directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import Span, encode_question
from mmtrace.models.loading import load, load_image
from mmtrace.transfer.contributions import attention_contributions
from mmtrace.transfer.visual import (
    concentration,
    consistency,
    expected_random_jaccard,
    patch_grid,
    top_share_by_position,
    visual_to_constraint,
)


def test_concentration_extremes():
    one_hot = np.zeros(576)
    one_hot[100] = 3.0
    assert concentration(one_hot) == pytest.approx(1.0)
    assert concentration(np.ones(576)) == pytest.approx(math.ceil(0.05 * 576) / 576)
    assert concentration(np.ones(30), share=0.1) == pytest.approx(3 / 30)  # no float ceil slip
    with pytest.raises(ValueError):
        concentration(np.zeros(10))


def test_consistency_identical_top_sets():
    rng = np.random.default_rng(1)
    m = rng.random((20, 64)) * 0.1
    m[:, [3, 17, 40, 63]] += 1.0  # same top-4 in every question, lower ranks vary
    out = consistency(m, k=4, n_perm=200)
    assert out["overlap"] == pytest.approx(1.0)
    assert out["p_value"] == pytest.approx(1 / 201)
    assert out["baseline_ci95"][1] < 0.2


def test_consistency_random_rows_match_baseline():
    m = np.random.default_rng(2).random((30, 49))
    out = consistency(m, k=5, n_perm=300, seed=3)
    lo, hi = out["baseline_ci95"]
    assert lo <= out["overlap"] <= hi
    assert out["p_value"] > 0.01
    assert out["baseline_mean"] == pytest.approx(out["baseline_expected"], rel=0.03)


def test_expected_random_jaccard_small_case():
    # n=3, k=2: two 2-subsets share 2 tokens (J=1) w.p. 1/3 and 1 token (J=1/3) w.p. 2/3.
    assert expected_random_jaccard(3, 2) == pytest.approx(1 / 3 + 2 / 9)
    assert expected_random_jaccard(5, 5) == pytest.approx(1.0)


def test_consistency_rejects_bad_args():
    with pytest.raises(ValueError):
        consistency(np.ones((1, 4)), k=2)
    with pytest.raises(ValueError):
        consistency(np.ones((3, 4)), k=5)


def test_patch_grid_row_major():
    grid = patch_grid(np.arange(16))
    assert grid.shape == (4, 4)
    assert grid[0].tolist() == [0, 1, 2, 3] and grid[1, 0] == 4 and grid[3, 3] == 15
    assert patch_grid(np.zeros(576)).shape == (24, 24)
    with pytest.raises(ValueError, match="square"):
        patch_grid(np.zeros(577))


def test_top_share_by_position():
    m = np.array(
        [
            [9.0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 9.0, 0, 0, 0, 0, 0, 0, 0, 1],
            [9.0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 1.0, 0, 0, 0, 9.0],
        ]
    )
    # share 0.2 of 10 tokens: the top 2 per question.
    out = top_share_by_position(m, share=0.2)
    assert out.tolist() == [0.5, 0.25, 0, 0, 0, 0.25, 0, 0, 0, 1.0]
    assert out.sum() == pytest.approx(2)
    # share 0.1: top 1 per question.
    assert top_share_by_position(m, share=0.1).tolist() == [0.5, 0.25] + [0] * 7 + [0.25]


@pytest.fixture(scope="module")
def mm_llama(trained):
    return load(trained["mm-llama"], "mllm")


def test_visual_to_constraint_on_toy_model(mm_llama, tiny_world):
    records = load_questions([tiny_world / f"{s}.csv" for s in ("known", "movies", "okvqa")])
    recs = [r for r in records if any(c.type == "visual" for c in r.constraints)][:3]
    assert recs
    template = Prompts().mllm
    for rec in recs:
        spans = [Span(c.start, c.end, c.type, c.replacement) for c in rec.constraints]
        image = load_image(tiny_world / rec.image_url)
        enc = encode_question(mm_llama, template, rec.qid, rec.question, spans, image)
        for layer in (0, 1):
            got = visual_to_constraint(mm_llama.model, enc, layer=layer)
            assert got.dtype == np.float64
            assert got.shape == (len(enc.image_positions),)
            assert len(enc.image_positions) == mm_llama.model.config.image_seq_length
            assert (got >= 0).all() and got.sum() > 0
            target = enc.span_positions["visual"][-1]
            with torch.no_grad():
                direct = attention_contributions(mm_llama.model, enc.inputs, [layer], [target])
            np.testing.assert_allclose(got, direct[0, 0, enc.image_positions].double().numpy())


def test_top_share_ties_go_to_lower_index():
    m = np.array([[0.0, 0, 0, 5.0]])
    assert top_share_by_position(m, share=0.5).tolist() == [1.0, 0, 0, 1.0]


def test_consistency_does_not_depend_on_the_simulation_block(monkeypatch):
    """The simulation runs in blocks bounded by the [sims, q, q] intersections (memory); the
    random stream is drawn in order, so any block size gives the same result."""
    from mmtrace.transfer import visual

    m = np.random.default_rng(4).random((40, 16))
    whole = consistency(m, k=2, n_perm=50, seed=9)
    monkeypatch.setattr(visual, "MAX_SIM_BLOCK", 40 * 40 * 3)  # 3 simulations per block
    assert consistency(m, k=2, n_perm=50, seed=9) == whole
