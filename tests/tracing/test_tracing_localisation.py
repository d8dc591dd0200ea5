"""The tracing effect at the edit site (Hase et al.'s localisation), on the compiled control
whose route is known: it equals the cell-by-cell reference trace at the visual constraint's last
token, and restores the answer exactly at the layers its ground truth says (the hidden state up
to the layer before the read head, which reads that position's layer-1 output; the MLP output at
the storage layer only), and nowhere else: effects of 1 against a 1e-5 tolerance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mmtrace.config import Prompts, Tracing
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import encode_record
from mmtrace.models.loading import load
from mmtrace.seeding import derive
from mmtrace.tracing import question
from mmtrace.tracing.localisation import constraint_effects
from mmtrace.tracing.reference import trace_reference
from mmtrace.tracing.study import corruption_pools, settings_from

TOL = 1e-5


@pytest.mark.parametrize("kind", ["hidden", "mlp"])
def test_constraint_effects_match_the_reference_and_the_route(compiled, planted, kind):
    loaded, truth, records, _ = compiled
    targets = [r for r in records if r.constraint_type == "single" and not r.held_out][:4]
    cfg = Tracing()
    out = constraint_effects(loaded, targets, Prompts(), planted, cfg, 0, records, kind=kind)
    assert out["kind"] == kind and out["window"] == 1 and out["skipped"] == 0
    assert [r["qid"] for r in out["records"]] == [r.qid for r in targets]
    read, storage = truth["read"]["layer"], truth["storage"]["layer"]
    # the hidden state up to the layer before the read head; the MLP at the storage layer only
    on = list(range(read)) if kind == "hidden" else [storage]
    restore = truth["expected"]["windows"]["1"][kind]["restore"]
    assert [layer for role, layer in restore if role == "constraint_last"] == on
    pools = corruption_pools(records)
    for rec, row in zip(targets, out["records"], strict=True):
        ie = np.asarray(row["ie"])
        drop = row["p_clean"] - row["p_corr"]
        assert drop > 0.99
        off = [layer for layer in range(len(ie)) if layer not in on]
        np.testing.assert_allclose(ie[on], drop, atol=1e-3)
        np.testing.assert_allclose(ie[off], 0.0, atol=1e-3)
        # the same cell, restored one at a time by the reference implementation
        enc = encode_record(loaded, rec, Prompts(), planted)
        own = replace(settings_from(cfg, 0), kinds=(kind,), seed=derive(0, "noise", rec.qid))
        pool = [p for p in pools["visual"] if p != rec.subject and p not in rec.answers]
        prep = question.prepare(loaded, enc, Prompts().mllm, rec.question, "visual", own, pool=pool)
        ref = trace_reference(
            loaded.model,
            enc.inputs,
            prep.corrupted,
            row["answer_token_id"],
            kind,
            [row["position"]],
            window=1,
        )
        np.testing.assert_allclose(ie, ref.ie[0].numpy(), atol=TOL, rtol=0)


def test_constraint_effects_refuse_a_text_model(trained, tiny_world):
    loaded = load(trained["llama"], "llm", name="llama")
    records = load_questions([tiny_world / "known.csv"])
    with pytest.raises(ValueError, match="MLLM"):
        constraint_effects(loaded, records[:1], Prompts(), tiny_world, Tracing(), 0, records)
