"""The compiled positive control: built from the tiny toy world, it answers every
single-constraint question about a non-held-out entity, and its ground truth is what forward
hooks observe (the code reaches the constraint token only through the planted visual tokens, the
storage MLP writes the facts there, the read head copies them to the last token)."""

from __future__ import annotations

import json

import torch

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.evaluate import score_questions
from mmtrace.models.compiled import compile_llava
from mmtrace.models.compiled_vision import CODE_DIMS, code_index
from mmtrace.models.encoding import encode_record
from mmtrace.models.hooks import capture
from mmtrace.models.loading import load
from mmtrace.models.lookup import locate
from mmtrace.toyworld.planted import BANDS

SPLITS = ("known", "movies", "okvqa", "heldout")


def test_it_answers_every_single_constraint_question_it_knows(compiled, planted):
    loaded, truth, records, _ = compiled
    single = [r for r in records if r.constraint_type == "single"]
    rows = score_questions(loaded, single, Prompts(), planted, 32)
    known = [row for row, r in zip(rows, single, strict=True) if not r.held_out]
    assert all(row["correct"] for row in known)
    assert min(row["p_answer"] for row in known) > 0.99
    unknown = [row for row, r in zip(rows, single, strict=True) if r.held_out]
    assert max(row["p_answer"] for row in unknown) < 0.01  # long tail: recognised, not known
    assert truth["planted_visual_tokens"] == [12, 13, 14, 15]


def test_the_ground_truth_route_is_what_hooks_observe(compiled, planted):
    loaded, truth, records, entities = compiled
    lay = {k: slice(*v) for k, v in truth["layout"].items()}
    attrs = {e["id"]: e["attrs"] for e in entities}
    blocks = locate(loaded.model)
    for rec in [r for r in records if r.constraint_type == "single" and not r.held_out][:6]:
        enc = encode_record(loaded, rec, Prompts(), planted)
        vc, last = enc.span_positions["visual"][-1], len(enc.input_ids) - 1
        with (
            torch.no_grad(),
            capture(blocks, "attn", range(4)) as attn,
            capture(blocks, "mlp", range(4)) as mlp,
        ):
            loaded.model(**enc.inputs)
        # every write is in units of the residual scale (compiled.py's docstring)
        attn = {i: a / truth["residual_scale"] for i, a in attn.items()}
        mlp = {i: m / truth["residual_scale"] for i, m in mlp.items()}
        want = torch.zeros(CODE_DIMS)
        for attr in BANDS:
            want[code_index(attr, attrs[rec.entity_id][attr])] = 1.0
        # transfer: layer-0 attention writes the entity's code at the constraint, nowhere else
        got = attn[0][0, :, lay["code"]]
        torch.testing.assert_close(got[vc], want, atol=1e-3, rtol=0)
        others = [
            p for p in enc.positions_to_trace() if p != vc and enc.tokens[p] != enc.tokens[vc]
        ]
        assert got[others].abs().max() < 1e-3
        # storage: layer-1 MLP writes the category and slots at the constraint
        assert mlp[1][0, vc, lay["cat"]].max() > 0.99 and mlp[1][0, vc, lay["slot"]].max() > 0.99
        assert mlp[0].abs().max() == 0 and mlp[3].abs().max() == 0  # empty layers
        # read: layer-2 attention copies the slots to the last token; layer-2 MLP answers
        assert attn[2][0, last, lay["slot"]].max() > 0.99
        assert mlp[2][0, last, lay["ans"]].max() > 0.99


def test_cutting_the_route_removes_every_answer(planted, trained, tmp_path):
    records = load_questions([planted / "known.csv"])
    entities = json.loads((planted / "world.json").read_text())["entities"]
    compile_llava(records, entities, trained["tok"], Prompts().mllm, 48, 12, 0, tmp_path, cut=True)
    loaded = load(tmp_path, "mllm", name="cut")
    single = [r for r in records if r.constraint_type == "single"]
    rows = score_questions(loaded, single, Prompts(), planted, 32)
    assert max(row["p_answer"] for row in rows) < 0.01
    assert json.loads((tmp_path / "ground_truth.json").read_text())["route_cut"] is True


def test_knocking_out_the_planted_mask_removes_the_answer(compiled, planted):
    """Ground truth for the ablation's content ranking: the compiled model reads the entity
    only from the code strip, so mean-ablating the mask's 4 patches removes every answer, and
    Eq. 1's top 4 at the constraint are exactly those patches (overlap 1)."""
    from mmtrace.config import Ablation, Attention
    from mmtrace.transfer import study

    loaded, _, records, _ = compiled
    single = [r for r in records if r.constraint_type == "single" and not r.held_out][:4]
    scores = {r.qid: {"correct": True} for r in single}
    cfg = Ablation(ways=["mean"], random_draws=2, mean_images=8, fractions=[0.25])
    images = study.mean_image_files(records, planted, cfg.mean_images)
    out = study.ablation_records(
        loaded, single, scores, Prompts(), planted, Attention(), cfg, images, seed=1
    )
    for r in out["records"]:
        assert r["ks"] == [4] and r["mask_overlap"] == [1.0]
        assert r["mean"]["mask"]["correct"] == [0.0] and r["p_clean"] > 0.99
        assert r["mean"]["bottom"]["correct"] == [1.0]


def test_the_residual_scale_changes_no_output(compiled, planted, trained, monkeypatch):
    """The residual scale multiplies every write and every RMSNorm divides it out, so a build at
    unit scale gives the same answer distribution (the scale matters only to methods that act on
    the residual's vectors, such as MultEdit's Adam steps)."""
    from mmtrace.models import compiled as compiled_module
    from mmtrace.models.scoring import last_logits

    loaded, truth, records, entities = compiled
    assert truth["residual_scale"] > 1
    monkeypatch.setattr(compiled_module, "RESIDUAL_SCALE", 1.0)
    unit, _, unit_truth = compiled_module.build(
        records, entities, trained["tok"], Prompts().mllm, 48, 12, seed=0
    )
    assert unit_truth["residual_scale"] == 1.0
    for rec in [r for r in records if r.constraint_type == "single"][:6]:
        enc = encode_record(loaded, rec, Prompts(), planted)
        with torch.no_grad():
            scaled = torch.log_softmax(last_logits(loaded.model, enc.inputs).float(), -1)
            plain = torch.log_softmax(last_logits(unit, enc.inputs).float(), -1)
        torch.testing.assert_close(scaled, plain, atol=1e-4, rtol=0)
