"""Eq. 1 and the visual-token ablation on every family that has visual tokens
(tests/support/families.py): the contribution vectors sum back to the attention block's output
as the model's own (SDPA) forward computes it; the ablation's batched rows over the recorded
language-model call equal the same knockouts through the model's full forward from pixels; and
mean-ablating every visual token with another image's embeddings equals running that image. Every
compared effect is >= 100x the tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.families import FAMILIES, encoded, image, loaded

from mmtrace.models.lookup import attention_output_projection, locate
from mmtrace.transfer import ablation
from mmtrace.transfer.contributions import attention_contributions, contribution_vectors

TOL = 1e-5
TOKENS = sorted(n for n, f in FAMILIES.items() if f.status != "refused")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _attention_outputs(model, inputs) -> dict[int, torch.Tensor]:
    """Each attention block's output in the model's own forward (its default attention)."""
    blocks, seen, handles = locate(model), {}, []
    for layer in range(len(blocks)):

        def hook(_m, _a, out, layer=layer):
            seen[layer] = out[0][0].detach()

        handles.append(blocks.module("attn", layer).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", TOKENS)
def test_contributions_sum_to_the_attention_output(name):
    lm = loaded(name)
    enc = encoded(lm)
    want = _attention_outputs(lm.model, enc.inputs)
    for layer in (0, len(want) - 1):
        vecs = contribution_vectors(lm.model, enc.inputs, layer)
        bias = attention_output_projection(locate(lm.model).module("attn", layer)).bias
        total = vecs.sum(dim=1) + (0 if bias is None else bias)
        assert want[layer].abs().max() >= 100 * TOL
        torch.testing.assert_close(total, want[layer], atol=TOL, rtol=0)
    # the constraint reads the image (Gemma-3's local layers cannot: the window is 8 tokens)
    a = attention_contributions(lm.model, enc.inputs, targets=enc.span_positions["visual"][-1:])
    assert a[:, 0, enc.image_positions].max() >= 100 * TOL


@pytest.mark.parametrize("name", TOKENS)
def test_ablation_rows_equal_the_full_forward(name):
    lm = loaded(name)
    enc = encoded(lm)
    n = len(enc.image_positions)
    hidden = lm.model.config.get_text_config().hidden_size
    mean = torch.randn(n, hidden, generator=torch.Generator().manual_seed(3))
    contrib = np.arange(n, dtype=float)
    gold = [int(lm.model(**enc.inputs).logits[0, -1].argmax())]
    ks = sorted({1, n // 2, n})
    out = ablation.ablate_question(
        lm, enc, gold, contrib, ks, ["block", "mean"], [0, 1], mean, 1, 0, 64, per_layer=True
    )
    plan = ablation.variants(contrib, ks, 1, 0)
    inputs = {k: v.repeat(len(plan), *([1] * (v.dim() - 1))) for k, v in enc.inputs.items()}
    with torch.no_grad():
        knocked = [[enc.image_positions[i] for i in idx] for _, _, idx in plan]
        with ablation.blocking(lm.model, knocked, [0, 1]):
            p_block = torch.softmax(lm.model(**inputs).logits[:, -1], -1)[:, gold[0]]
        with ablation.mean_ablating(lm.model, [idx for _, _, idx in plan], mean):
            p_mean = torch.softmax(lm.model(**inputs).logits[:, -1], -1)[:, gold[0]]
    for way, p in (("block", p_block), ("mean", p_mean)):
        assert (p - out["p_clean"]).abs().max() >= 100 * TOL, way  # the knockouts act
        for ranking in ablation.RANKINGS:
            for j, k in enumerate(ks):
                sel = [i for i, (kk, r, _) in enumerate(plan) if kk == k and r == ranking]
                assert out[way][ranking]["p"][j] == pytest.approx(float(p[sel].mean()), abs=TOL)
    with torch.no_grad(), ablation.blocking(lm.model, [enc.image_positions], [0]):
        p0 = torch.softmax(lm.model(**enc.inputs).logits[0, -1], -1)[gold[0]]
    assert out["per_layer_all"]["p"][0] == pytest.approx(float(p0), abs=TOL)
    constraint = enc.span_positions["visual"]
    with torch.no_grad(), ablation.blocking(lm.model, [enc.image_positions], [0], constraint):
        p0 = torch.softmax(lm.model(**enc.inputs).logits[0, -1], -1)[gold[0]]
    assert out["per_layer"]["p"][0] == pytest.approx(float(p0), abs=TOL)


@pytest.mark.parametrize("name", TOKENS)
def test_mean_ablating_with_another_images_embeddings_equals_that_image(name):
    lm = loaded(name)
    enc = encoded(lm)
    other = lm.encode([enc.prompt], [image(7)])
    emb = ablation.mean_visual_embeddings(lm, enc.prompt, [image(7)], 1)
    with torch.no_grad():
        want = lm.model(**other).logits[0, -1]
        clean = lm.model(**enc.inputs).logits[0, -1]
        with ablation.mean_ablating(lm.model, [list(range(len(enc.image_positions)))], emb):
            got = lm.model(**enc.inputs).logits[0, -1]
    assert (want - clean).abs().max() >= 100 * TOL  # the two images differ
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
