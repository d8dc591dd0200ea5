"""The cached prefix: running only the positions from t on, with the cache of the positions
before, gives the full forward's logits and gradients, step after step, on LLaVA-Llama and
LLaVA-Phi; an intervention at t has an effect >= 100x the tolerance, so equality means something."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import IMAGE_TOKEN, inputs, llava

from mmtrace.models.hooks import first_output, output_hook, replace_first_output
from mmtrace.models.lookup import locate
from mmtrace.models.prefix import cache_prefix, run_suffix

TOL = 1e-5


def _adding(model, layer: int, position: int, delta: torch.Tensor):
    def hook(_m, _i, out):
        h = first_output(out)
        shift = torch.zeros_like(h)
        shift[:, position] = delta
        return replace_first_output(out, h + shift)

    return output_hook(locate(model).module("mlp", layer), hook)


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_suffix_equals_full_forward(arch):
    model = llava(arch)
    clean, _, first = inputs(True)
    n = clean["input_ids"].shape[1]
    with torch.no_grad():
        full = model(**clean).logits[0]
    for start in (first, first + 1, n - 1):
        prefix = cache_prefix(model, clean, start)
        for _ in range(2):  # a second run sees the same prefix
            with torch.no_grad():
                part = run_suffix(model, prefix).logits[0]
            torch.testing.assert_close(part, full[start:], atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_intervention_and_gradient_match_full_forward(arch):
    model = llava(arch)
    clean, _, first = inputs(True)
    pos, layer, target = first + 1, 1, 7
    hidden = model.config.text_config.hidden_size
    delta = torch.randn(hidden, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = torch.log_softmax(model(**clean).logits[0, -1], -1)[target]

    def full_logp(d):
        with _adding(model, layer, pos, d):
            return torch.log_softmax(model(**clean).logits[0, -1], -1)[target]

    prefix = cache_prefix(model, clean, pos)

    def suffix_logp(d):
        with _adding(model, layer, 0, d):
            logits = run_suffix(model, prefix, logits_to_keep=1).logits[0, -1]
            return torch.log_softmax(logits, -1)[target]

    for scale in (1.0, 3.0):  # two steps on the same prefix
        d_full = (scale * delta).requires_grad_(True)
        d_suffix = (scale * delta).requires_grad_(True)
        lf, ls = full_logp(d_full), suffix_logp(d_suffix)
        assert abs(float(lf.detach() - base)) > 100 * TOL  # the intervention moves log p far
        torch.testing.assert_close(ls, lf, atol=TOL, rtol=0)
        lf.backward()
        ls.backward()
        assert float(d_full.grad.abs().max()) > 100 * TOL
        torch.testing.assert_close(d_suffix.grad, d_full.grad, atol=TOL, rtol=0)


def test_prefix_errors():
    model = llava("llama")
    clean, _, first = inputs(True)
    n = clean["input_ids"].shape[1]
    with pytest.raises(ValueError, match="outside"):
        cache_prefix(model, clean, n)
    with pytest.raises(ValueError, match="outside"):
        cache_prefix(model, clean, 0)
    with pytest.raises(ValueError, match="image token"):
        cache_prefix(model, clean, 2)  # the image tokens run to position 4
    batch = {k: torch.cat([v, v]) for k, v in clean.items()}
    with pytest.raises(ValueError, match="batch of 2"):
        cache_prefix(model, batch, first)
    assert int((clean["input_ids"][0] == IMAGE_TOKEN).sum()) > 0
