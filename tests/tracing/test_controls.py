"""The embedding row: restoring a position's input embedding equals the reference trace's
restoration of that embedding (a patch at the embedding module), and positions before the
corruption have no effect."""

from __future__ import annotations

import pytest
import torch

from mmtrace.models.hooks import output_hook
from mmtrace.models.scoring import answer_prob
from mmtrace.tracing.controls import embedding_row


def _one_at_a_time(model, clean, corrupted, answer, t):
    emb = model.get_input_embeddings()
    with torch.no_grad():
        clean_emb = emb(clean["input_ids"])

        def put(_m, _i, out):
            out = out.clone()
            out[:, t] = clean_emb[:, t]
            return out

        with output_hook(emb, put):
            return answer_prob(model, corrupted, answer)


def test_embedding_row_matches_single_restorations(setup):
    model, clean, corrupted, first, answer = setup
    seq = clean["input_ids"].shape[1]
    positions = list(range(first - 1, seq))
    row = embedding_row(model, clean, corrupted, answer, positions, batch_size=3)
    p_corr = answer_prob(model, corrupted, answer)
    for t, ie in zip(positions, row, strict=True):
        assert ie == pytest.approx(
            _one_at_a_time(model, clean, corrupted, answer, t) - p_corr, abs=1e-6
        )
    assert row[0] == pytest.approx(0.0, abs=1e-7)  # before the corruption: the same token
    assert max(abs(v) for v in row) > 1e-3  # the corrupted tokens' own embeddings matter
