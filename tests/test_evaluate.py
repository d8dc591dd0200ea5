"""The official VQA accuracy (OK-VQA's metric): the answer normalisation and the
leave-one-annotator-out score, checked by hand."""

from __future__ import annotations

import pytest

from mmtrace.evaluate import normalize_vqa_answer, vqa_accuracy


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("Two", "2"),
        ("a dog.", "dog"),
        ("The Dog's bed", "dog's bed"),
        ("dont", "don't"),
        ("t-shirt", "t shirt"),
        ("1,000", "1000"),
        ("yes!", "yes"),
        ("3.5", "3.5"),
        ("fish - chips", "fish chips"),
    ],
)
def test_normalize_vqa_answer(raw, norm):
    assert normalize_vqa_answer(raw) == norm


def test_vqa_accuracy_hand_computed():
    assert vqa_accuracy("two", ["2"] * 10) == 1.0
    # 3 of 10 agree: the 3 subsets without one of them have 2 matches (2/3), the 7 others 3
    assert vqa_accuracy("2", ["2"] * 3 + ["3"] * 7) == pytest.approx((3 * 2 / 3 + 7) / 10)
    # 2 of 10: 2 subsets with 1 match (1/3), 8 with 2 (2/3)
    assert vqa_accuracy("Red.", ["red"] * 2 + ["blue"] * 8) == pytest.approx(0.6)
    # 1 of 10: 9 subsets with 1 match
    assert vqa_accuracy("red", ["red"] + ["blue"] * 9) == pytest.approx(0.3)
    assert vqa_accuracy("green", ["red"] * 10) == 0.0
    with pytest.raises(ValueError):
        vqa_accuracy("x", [])
