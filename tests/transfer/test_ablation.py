"""Visual-token ablation: the two knockouts checked against independent computations.

- Blocking attention to token i in every layer of a Llama LM equals running the sequence without
  token i, the later tokens keeping their position ids (rotary attention depends only on them).
- Under blocking, the attention probabilities from later tokens to the knocked-out positions are
  exactly 0 in the blocked layers and untouched elsewhere.
- Mean ablation of every visual token with image B's own embeddings equals running image B.
- Batched variants equal one-row runs, and knocking out nothing changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.tiny_models import IMAGE_TOKEN, N_IMG, N_LAYERS, inputs, llama, llava

from mmtrace.config import Ablation, Attention, Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.hooks import removing
from mmtrace.models.loading import load
from mmtrace.models.lookup import locate, projector
from mmtrace.transfer import ablation, study
from mmtrace.transfer.contributions import capture


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_ks_variants_and_ranking():
    assert ablation.ks_for([0.0625, 0.125, 0.25, 0.5], 576) == [36, 72, 144, 288]
    assert ablation.ks_for([0.0625, 0.125, 0.25, 0.5], 16) == [1, 2, 4, 8]
    assert ablation.ks_for([0.01, 0.02], 16) == [1]  # rounds up to one token, duplicates merged
    contrib = np.array([0.1, 0.9, 0.5, 0.5, 0.0, 0.3])
    plan = ablation.variants(contrib, [2], draws=4, seed=7)
    by = {}
    for k, ranking, idx in plan:
        assert k == 2 and len(idx) == 2 == len(set(idx))
        by.setdefault(ranking, []).append(idx)
    assert by["top"] == [[1, 2]]  # ties go to the lower index
    assert by["bottom"] == [[0, 4]]
    assert len(by["random"]) == 4
    assert ablation.variants(contrib, [2], 4, 7) == plan  # seeded
    assert ablation.variants(contrib, [2], 4, 8) != plan
    # with the object's coverage: the k best-covered patches, the rest of the plan unchanged
    coverage = np.array([0.0, 0.2, 0.0, 1.0, 0.9, 0.0])
    masked = ablation.variants(contrib, [2], 4, 7, coverage)
    assert [v for v in masked if v[1] != ablation.MASK] == plan
    assert [v[2] for v in masked if v[1] == ablation.MASK] == [[3, 4]]
    assert ablation.mask_overlap(contrib, coverage, [1, 2, 4]) == [0.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="5 mask patches for 6 visual tokens"):
        ablation.variants(contrib, [2], 4, 7, coverage[:5])


def test_blocking_everywhere_equals_removing_the_token():
    model = llama()
    ids = torch.tensor([[1, 20, 21, 22, 23, 24, 25, 26]])
    for i in (1, 3, 5):
        with ablation.blocking(model, [[i]], range(N_LAYERS)):
            blocked = _logits(model, {"input_ids": ids})[0, -1]
        keep = [j for j in range(ids.shape[1]) if j != i]
        removed = _logits(model, {"input_ids": ids[:, keep], "position_ids": torch.tensor([keep])})[
            0, -1
        ]
        torch.testing.assert_close(blocked, removed, atol=1e-5, rtol=1e-5)
        assert (blocked - _logits(model, {"input_ids": ids})[0, -1]).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_blocking_zeroes_attention_only_in_blocked_layers(arch):
    model = llava(arch)
    clean, _, _ = inputs(True)
    image = [i for i, t in enumerate(clean["input_ids"][0].tolist()) if t == IMAGE_TOKEN]
    knocked = [image[0], image[2]]
    layers = [0, 1]
    with ablation.blocking(model, [knocked], layers):
        caps = capture(model, clean, range(N_LAYERS))
    free = capture(model, clean, range(N_LAYERS))
    for layer in range(N_LAYERS):
        probs = caps[layer].probs  # [heads, seq, seq]
        later = [j for j in range(probs.shape[1]) if j > min(knocked)]
        to_knocked = torch.stack([probs[:, j, i] for j in later for i in knocked if j > i])
        if layer in layers:
            assert torch.all(to_knocked == 0)
            torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs.sum(-1)))
        else:
            assert torch.all(to_knocked > 0)
    # layer 0 sees the same inputs either way, so its unblocked rows are identical
    torch.testing.assert_close(
        caps[0].probs[:, : min(knocked) + 1], free[0].probs[:, : min(knocked) + 1]
    )


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_batched_knockouts_equal_single_rows(arch):
    model = llava(arch)
    clean, _, _ = inputs(True)
    image = [i for i, t in enumerate(clean["input_ids"][0].tolist()) if t == IMAGE_TOKEN]
    rows = [[], [image[1]], [image[0], image[3]]]
    batch = {k: v.repeat(len(rows), *([1] * (v.dim() - 1))) for k, v in clean.items()}
    with ablation.blocking(model, rows, [0, 1]):
        together = _logits(model, batch)[:, -1]
    for b, row in enumerate(rows):
        with ablation.blocking(model, [row], [0, 1]):
            alone = _logits(model, clean)[0, -1]
        torch.testing.assert_close(together[b], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[0], _logits(model, clean)[0, -1], atol=1e-5, rtol=1e-5)
    visual = [list(range(N_IMG))[:1], [], [0, 1, 2, 3]]
    mean = torch.randn(N_IMG, model.config.text_config.hidden_size)
    with ablation.mean_ablating(model, visual, mean):
        together = _logits(model, batch)[:, -1]
    for b, row in enumerate(visual):
        with ablation.mean_ablating(model, [row], mean):
            alone = _logits(model, clean)[0, -1]
        torch.testing.assert_close(together[b], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1], _logits(model, clean)[0, -1], atol=1e-5, rtol=1e-5)


def test_mean_ablating_with_another_images_embeddings_equals_that_image():
    model = llava("llama")
    clean, _, _ = inputs(True)
    other = {
        **clean,
        "pixel_values": torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(9)),
    }
    seen = []
    hook = projector(model).register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with removing([hook]):
        want = _logits(model, other)[0, -1]
    (emb,) = seen
    with ablation.mean_ablating(model, [list(range(N_IMG))], emb[0]):
        got = _logits(model, clean)[0, -1]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - _logits(model, clean)[0, -1]).abs().max() > 1e-3


def test_projector_and_layers_found():
    model = llava("phi")
    assert projector(model) is model.model.multi_modal_projector
    with pytest.raises(ValueError, match="projector"):
        projector(llama())
    assert len(locate(model)) == N_LAYERS


def test_ablation_records_on_toy_mllm(trained, tiny_world):
    loaded = load(trained["mm-llama"], "mllm", name="mm-llama")
    records = load_questions([tiny_world / "known.csv"])[:4]
    scores = {r.qid: {"correct": i != 1} for i, r in enumerate(records)}
    cfg = Ablation(block_layers=1, random_draws=2, mean_images=3, fractions=[0.25, 0.5])
    images = study.mean_image_files(records, tiny_world, cfg.mean_images)
    out = study.ablation_records(
        loaded, records, scores, Prompts(), tiny_world, Attention(), cfg, images, seed=5
    )
    assert out["excluded"] == {"answered incorrectly": 1}
    assert out["block_layers"] == [0] and out["mean_images"] == 3
    n_visual = loaded.model.config.image_seq_length
    for r in out["records"]:
        assert r["n_visual"] == n_visual
        assert r["ks"] == ablation.ks_for(cfg.fractions, n_visual)
        assert len(r["mask_overlap"]) == len(r["ks"])  # the toy world's images have masks
        for way in cfg.ways:
            for ranking in (*ablation.RANKINGS, ablation.MASK):
                p = r[way][ranking]["p"]
                assert len(p) == len(r["ks"]) and all(0 <= x <= 1 for x in p)
                assert all(x in (0, 0.5, 1) for x in r[way][ranking]["correct"])
    again = study.ablation_records(
        loaded, records, scores, Prompts(), tiny_world, Attention(), cfg, images, seed=5
    )
    assert again == out  # seeded random draws
    summary = study.summarise_ablation([{"model": "m", "split": "known", **out}])
    g = summary["m"]["splits"]["known"]["block"]
    first = out["records"][0]
    assert g["n"] == len(out["records"])
    np.testing.assert_allclose(
        g["top"]["drop_p_answer"],
        np.mean([[r["p_clean"] - p for p in r["block"]["top"]["p"]] for r in out["records"]], 0),
    )
    assert g["k"] == first["ks"] and len(g["p_value_top_vs_random"]) == len(g["k"])
    assert len(g["p_value_top_vs_mask"]) == len(g["k"]) == len(g["mask_overlap"])
    np.testing.assert_allclose(
        g["mask_overlap"], np.mean([r["mask_overlap"] for r in out["records"]], 0)
    )
    assert summary["m"]["splits"]["all"]["n"] == g["n"]


def test_variants_from_precomputed_image_features_equal_the_pixel_path(trained, tiny_world):
    """ablate_question reuses the image's features for every variant (no vision tower per row);
    the same knockouts through the pixel path (projector hook, repeated images) agree."""
    from mmtrace.models.encoding import encode_record

    loaded = load(trained["mm-llama"], "mllm")
    rec = load_questions([tiny_world / "known.csv"])[0]
    enc = encode_record(loaded, rec, Prompts(), tiny_world)
    n = len(enc.image_positions)
    mean = torch.randn(n, loaded.model.config.text_config.hidden_size)
    contrib = np.arange(n, dtype=float)
    out = ablation.ablate_question(
        loaded, enc, [5], contrib, [1, 2], ["block", "mean"], [0], mean, 1, 0, 64
    )
    plan = ablation.variants(contrib, [1, 2], 1, 0)
    inputs = {k: v.repeat(len(plan), *([1] * (v.dim() - 1))) for k, v in enc.inputs.items()}
    with torch.no_grad():
        knocked = [[enc.image_positions[i] for i in idx] for _, _, idx in plan]
        with ablation.blocking(loaded.model, knocked, [0]):
            p_block = torch.softmax(loaded.model(**inputs).logits[:, -1], -1)[:, 5]
        with ablation.mean_ablating(loaded.model, [idx for _, _, idx in plan], mean):
            p_mean = torch.softmax(loaded.model(**inputs).logits[:, -1], -1)[:, 5]
    for way, p in (("block", p_block), ("mean", p_mean)):
        for ranking in ablation.RANKINGS:
            for j, k in enumerate([1, 2]):
                sel = [i for i, (kk, r, _) in enumerate(plan) if kk == k and r == ranking]
                assert out[way][ranking]["p"][j] == pytest.approx(float(p[sel].mean()), abs=1e-6)


TIGHT = 2e-7  # float32 rounding between the batched rows and one forward of the model


def test_per_layer_blocking_equals_blocking_every_token_at_that_layer(trained, tiny_world):
    """The per-layer curve from every later token (`per_layer_all`) equals the top-k knockout
    at k = all visual tokens with `block_layers` = that one layer; the constraint's curve
    (`per_layer`, F3-layer's) equals the same blocking from the constraint's tokens only, and
    differs from it (the last token reads the image too); each summary has one Holm p-value per
    layer."""
    from mmtrace.models.encoding import encode_record

    loaded = load(trained["mm-llama"], "mllm")
    rec = load_questions([tiny_world / "known.csv"])[0]
    enc = encode_record(loaded, rec, Prompts(), tiny_world)
    n = len(enc.image_positions)
    contrib = np.arange(n, dtype=float)
    out = ablation.ablate_question(
        loaded, enc, [5], contrib, [n], ["block"], [0], None, 1, 0, 64, per_layer=True
    )
    n_layers = loaded.model.config.text_config.num_hidden_layers
    assert len(out["per_layer"]["p"]) == len(out["per_layer_all"]["p"]) == n_layers
    gap = 0.0
    for layer in range(n_layers):
        at = ablation.ablate_question(
            loaded, enc, [5], contrib, [n], ["block"], [layer], None, 1, 0, 64
        )
        all_p = out["per_layer_all"]["p"][layer]
        assert all_p == pytest.approx(at["block"]["top"]["p"][0], abs=1e-6)
        with torch.no_grad():
            constraint = enc.span_positions["visual"]
            with ablation.blocking(loaded.model, [enc.image_positions], [layer], constraint):
                logits = loaded.model(**enc.inputs).logits[0, -1]
        p = float(torch.softmax(logits.float(), -1)[5])
        assert out["per_layer"]["p"][layer] == pytest.approx(p, abs=TIGHT)
        gap = max(gap, abs(out["per_layer"]["p"][layer] - all_p))
    assert gap >= 100 * TIGHT  # the two curves block different reads
    rows = [{"qid": "q", "split": "known", "n_visual": n, **out}] * 3
    summary = study.summarise_ablation(
        [
            {
                "model": "m",
                "split": "known",
                "ways": ["block"],
                "block_layers": [0],
                "mean_images": 0,
                "records": rows,
                "excluded": {},
            }
        ]
    )
    per_layer = summary["m"]["splits"]["known"]["per_layer"]
    assert per_layer["n"] == 3 and len(per_layer["p_holm_drop_positive"]) == n_layers
    np.testing.assert_allclose(
        per_layer["drop_p_answer"], [out["p_clean"] - p for p in out["per_layer"]["p"]], atol=1e-9
    )
