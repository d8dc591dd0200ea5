"""Eq. 1 (attention contributions) against an independent per-head, per-token loop, against the
attention block's real output (the decomposition identity), and for causality, on tiny random
LLaVA-Llama (grouped-query attention), LLaVA-Phi (biased projections, parallel block) and Llama."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import MODELS, inputs

from mmtrace.models.lookup import locate
from mmtrace.transfer.contributions import attention_contributions, contribution_vectors


@pytest.fixture(scope="module", params=sorted(MODELS))
def setup(request):
    build, mm = MODELS[request.param]
    model = build()
    # Random biases (Phi's are zero-initialised), so that dropping one would be caught.
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear) and mod.bias is not None:
                mod.bias.normal_(0, 0.2)
    return model, inputs(mm)[0]


def _o_proj(attn):
    return attn.o_proj if hasattr(attn, "o_proj") else attn.dense


def _hooked(model):
    """Independent hooks: x from the block's `input_layernorm`, (output, A) from attention."""
    blocks, seen, handles = locate(model), {}, []
    for layer, block in enumerate(blocks.layers):

        def norm_hook(_m, _a, out, layer=layer):
            seen.setdefault(layer, {})["x"] = out[0].detach()

        def attn_hook(_m, _a, out, layer=layer):
            probs = None if out[1] is None else out[1][0].detach()  # None unless eager
            seen.setdefault(layer, {}).update(out=out[0][0].detach(), A=probs)

        handles.append(block.input_layernorm.register_forward_hook(norm_hook))
        handles.append(blocks.module("attn", layer).register_forward_hook(attn_hook))
    return seen, handles


def _brute_force(model, seen, layer: int) -> torch.Tensor:
    """[seq, seq, hidden] by explicit loops over target, source and head."""
    attn = locate(model).module("attn", layer)
    x, probs = seen[layer]["x"], seen[layer]["A"]
    n_heads, seq = probs.shape[0], probs.shape[1]
    d = attn.head_dim
    group = n_heads // (attn.v_proj.weight.shape[0] // d)
    w_v, b_v, w_o = attn.v_proj.weight, attn.v_proj.bias, _o_proj(attn).weight
    out = torch.zeros(seq, seq, w_o.shape[0])
    for j in range(seq):
        for i in range(seq):
            for h in range(n_heads):
                kv = h // group
                v = w_v[kv * d : (kv + 1) * d] @ x[i]
                if b_v is not None:
                    v = v + b_v[kv * d : (kv + 1) * d]
                out[j, i] += probs[h, j, i] * (w_o[:, h * d : (h + 1) * d] @ v)
    return out


def test_matches_brute_force_and_restores_sdpa(setup):
    model, inputs = setup
    seen, handles = _hooked(model)
    try:
        got = attention_contributions(model, inputs)
    finally:
        for h in handles:
            h.remove()
    assert model.config.get_text_config()._attn_implementation == "sdpa"
    n_layers = len(locate(model))
    seq = inputs["input_ids"].shape[1]
    assert got.shape == (n_layers, seq, seq)
    for layer in range(n_layers):
        assert torch.allclose(seen[layer]["A"].sum(-1), torch.ones(()), atol=1e-5)
        want = _brute_force(model, seen, layer).norm(dim=-1)
        torch.testing.assert_close(got[layer], want, atol=1e-5, rtol=1e-5)
    assert got.max() > 0.1  # not vacuous


def test_layer_and_target_selection(setup):
    model, inputs = setup
    full = attention_contributions(model, inputs)
    part = attention_contributions(model, inputs, layers=[-1, 0], targets=[-1, 2])
    seq = full.shape[-1]
    torch.testing.assert_close(part, full[[-1, 0]][:, [seq - 1, 2]], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("layer", [0, -1])
def test_vectors_sum_to_attention_output(setup, layer):
    model, inputs = setup
    seen, handles = _hooked(model)
    try:
        vecs = contribution_vectors(model, inputs, layer)
    finally:
        for h in handles:
            h.remove()
    layer = layer % len(locate(model))
    bias = _o_proj(locate(model).module("attn", layer)).bias
    total = vecs.sum(dim=1) + (0 if bias is None else bias)
    torch.testing.assert_close(total, seen[layer]["out"], atol=1e-5, rtol=0)
    # ... and eager attention changed nothing: the default (sdpa) pass gives the same output.
    seen, handles = _hooked(model)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(total, seen[layer]["out"], atol=1e-5, rtol=0)


def test_causal(setup):
    model, inputs = setup
    got = attention_contributions(model, inputs)
    future = torch.ones(got.shape[-2:], dtype=torch.bool).triu(1)
    assert torch.all(got[:, future] == 0)
    assert torch.all(got[:, ~future] > 0)


def test_target_chunking_is_exact(setup, monkeypatch):
    from mmtrace.transfer import contributions

    model, inputs = setup
    full = attention_contributions(model, inputs, layers=[1])
    monkeypatch.setattr(contributions, "MAX_BLOCK", 1)  # one target per chunk
    torch.testing.assert_close(attention_contributions(model, inputs, layers=[1]), full)
