"""The tuning split and the rule that picks each method's setting (F5 on fronts)."""

from __future__ import annotations

import pytest

from mmtrace.config import Editing
from mmtrace.dataset import load_questions
from mmtrace.editing import tuning

SPLITS = ("known", "movies", "okvqa", "heldout")


@pytest.fixture(scope="module")
def records(tiny_world):
    return load_questions([tiny_world / f"{s}.csv" for s in SPLITS])


def test_split_tuning_is_seeded_disjoint_and_leaves_half(records):
    cases = records[:9]
    chosen, held = tuning.split_tuning(cases, 6, seed=1)
    assert len(chosen) == 4 and len(held) == 5  # at most half is set apart
    assert {r.qid for r in chosen}.isdisjoint(r.qid for r in held)
    assert sorted(chosen + held, key=cases.index) == cases  # nothing lost, file order kept
    assert tuning.split_tuning(cases, 6, seed=1) == (chosen, held)
    assert tuning.split_tuning(cases, 6, seed=2) != (chosen, held)
    assert tuning.split_tuning(cases[:1], 6, seed=1) == ([], cases[:1])


def test_choose_follows_the_configured_rule():
    def pts(*pairs):
        return [{"efficacy": e, "specificity_drop": d} for e, d in pairs]

    # the highest efficacy within the allowed loss, not the highest overall
    assert tuning.choose(pts((0.5, 0.0), (0.9, 0.01), (1.0, 0.2)), 0.02) == 1
    # ties go to the first setting in grid order
    assert tuning.choose(pts((0.9, 0.0), (0.9, 0.0)), 0.02) == 0
    # nothing within the allowed loss: the smallest loss
    assert tuning.choose(pts((1.0, 0.3), (0.2, 0.1), (0.9, 0.5)), 0.02) == 1


def test_tuned_settings_are_validated():
    cfg = Editing()
    assert cfg.tuned("finetune_constrained", {"finetune_norm": 0.02}).finetune_norm == 0.02
    with pytest.raises(ValueError, match="not its hyperparameters"):
        cfg.tuned("finetune", {"clamp": 1.0})
    with pytest.raises(ValueError, match="tuning is null"):
        tuning.grid_methods(Editing(tuning=None))
