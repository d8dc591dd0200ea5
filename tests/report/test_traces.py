"""Trace figures people can read: the fixed prompt suffix keeps one row per token, negative IE
shows on a diverging scale shared within a row."""

from __future__ import annotations

import numpy as np

from mmtrace.report.traces import common_suffix, fig_average, role_matrix

SUFFIX = ["?", "ĠAnswer", ":"]


def _trace(question_tokens: list[str], roles: list[str], ie: float, split="known") -> dict:
    tokens = question_tokens + SUFFIX
    roles = roles + ["further", "further", "last_token"]
    n = len(tokens)
    layers = [0, 1]
    mat = np.full((n, 2), ie)
    mat[0, 0] = -ie  # a negative effect somewhere
    return {
        "tokens": tokens,
        "roles": roles,
        "positions": list(range(n)),
        "layers": layers,
        "ie": {"mlp": mat.tolist(), "attn": mat.tolist()},
        "setting": "single",
        "window": 1,
        "window_style": "centered",
        "split": split,
        "qid": f"q{len(question_tokens)}",
        "constraint_positions": {"visual": [1]},
    }


def test_the_fixed_suffix_is_aligned_token_by_token():
    a = _trace(["ĠThis", "Ġbuilding", "Ġis"], ["first", "last", "first_after"], 0.2)
    b = _trace(
        ["ĠThis", "Ġriver", "Ġflows", "Ġinto"], ["first", "last", "first_after", "further"], 0.4
    )
    assert common_suffix([a, b]) == SUFFIX
    labels, mat, counts = role_matrix([a, b], "mlp")
    assert labels[-3:] == ["suffix '?'", "suffix ' Answer'", "last token"]
    assert "further tokens" in labels  # " into": after the constraint, not part of the suffix
    assert counts[labels.index("suffix '?'")] == 2
    np.testing.assert_allclose(mat[labels.index("suffix '?'")], [0.3, 0.3])


def test_average_figure_draws_negative_effects(tmp_path):
    a = _trace(["ĠThis", "Ġbuilding", "Ġis"], ["first", "last", "first_after"], 0.2)
    written = fig_average([a, a], "single", 1, ["mlp", "attn"], "m", tmp_path / "avg")
    assert all(p.stat().st_size > 0 for p in written)
