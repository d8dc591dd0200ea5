"""MultEdit: the rank-one closed form against the explicit formula with a d_ff x d_ff inverse,
the key/value read against raw hooks, edits that reach their target and undo bit for bit, and
the fine-tuning baselines (FT-L stays within its bound)."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import inputs, llava

from mmtrace.editing.baselines import FinetuneSettings, finetune
from mmtrace.editing.multedit import (
    MultEditSettings,
    key_and_value,
    multedit,
    target_logprob,
)
from mmtrace.editing.rank_one import rank_one_update
from mmtrace.models.lookup import locate, output_projection


@pytest.mark.parametrize(("d_out", "d_in", "lam"), [(6, 10, 0.01), (8, 5, 1.0), (3, 40, 1e-4)])
def test_rank_one_equals_explicit_inverse(d_out, d_in, lam):
    g = torch.Generator().manual_seed(d_in)
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    k = torch.randn(d_in, generator=g, dtype=torch.float64)
    z = torch.randn(d_out, generator=g, dtype=torch.float64)
    explicit = (lam * w + torch.outer(z, k)) @ torch.linalg.inv(
        lam * torch.eye(d_in, dtype=torch.float64) + torch.outer(k, k)
    )
    torch.testing.assert_close(rank_one_update(w, k, z, lam), explicit, rtol=1e-9, atol=1e-9)
    # it is the minimiser: the gradient of ||W k - z||^2 + lam ||W - W0||^2 vanishes there
    new = rank_one_update(w, k, z, lam)
    grad = torch.outer(new @ k - z, k) + lam * (new - w)
    assert grad.abs().max() < 1e-9
    with pytest.raises(ValueError):
        rank_one_update(w, z, k, lam) if d_in != d_out else rank_one_update(w, k, z, 0.0)


def _setup(arch):
    model = llava(arch)
    clean, _, first = inputs(True)
    return model, clean, first + 1  # the constraint's last token


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_key_and_value_match_raw_hooks(arch):
    model, clean, pos = _setup(arch)
    layer = 1
    seen = {}
    mlp = locate(model).module("mlp", layer)
    w = output_projection(locate(model), layer)
    h1 = w.register_forward_hook(lambda m, i, o: seen.update(k=i[0][0, pos], wk=o[0, pos]))
    h2 = mlp.register_forward_hook(lambda m, i, o: seen.update(v=o[0, pos]))
    with torch.no_grad():
        model(**clean)
    h1.remove()
    h2.remove()
    k, v = key_and_value(model, clean, layer, pos)
    torch.testing.assert_close(k, seen["k"])
    torch.testing.assert_close(v, seen["v"])
    bias = w.bias if w.bias is not None else 0
    torch.testing.assert_close(v, w.weight @ k + bias)  # Phi's fc2 has a bias, Llama's none


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_multedit_reaches_target_and_undoes_bit_for_bit(arch):
    model, clean, pos = _setup(arch)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        logits = model(**clean).logits[0, -1]
    target = int(logits.argsort()[len(logits) // 2])  # a middling token
    p0 = float(torch.softmax(logits, -1)[target])
    settings = MultEditSettings(layer=1, steps=30, lr=0.5, clamp=50.0)
    k, _ = key_and_value(model, clean, 1, pos)
    edit = multedit(model, clean, pos, target, settings)
    with torch.no_grad():
        p1 = float(target_logprob(model, clean, target).exp())
    # a single position of a random model moves p(target) only so far: 0.008 -> about 0.03
    assert p1 > 3 * p0
    steps = edit.info["p_target_by_step"]
    assert steps[-1] > 3 * steps[0]
    # the closed form realises W* k = W k + delta ||k||^2 / (lam + ||k||^2) at the key
    moved = (edit.weight.detach().double() - edit.original.double()) @ k.double()
    kk = float(k.double() @ k.double())
    assert float(moved.norm()) == pytest.approx(
        edit.info["delta_norm"] * kk / (0.01 + kk), rel=1e-4
    )
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed == [n for n, p in model.named_parameters() if p is edit.weight]
    edit.undo()
    assert edit.undone()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())


def test_multedit_update_is_rank_one_with_the_key_direction():
    model, clean, pos = _setup("llama")
    k, _ = key_and_value(model, clean, 1, pos)
    edit = multedit(model, clean, pos, 7, MultEditSettings(layer=1, steps=3))
    diff = (edit.weight.detach() - edit.original).double()
    assert torch.linalg.matrix_rank(diff, rtol=1e-6) == 1
    # every row of the update is a multiple of k
    cos = (diff @ k.double()).abs() / (diff.norm(dim=1) * k.double().norm() + 1e-30)
    assert cos[diff.norm(dim=1) > 1e-9].min() > 1 - 1e-6
    edit.undo()


def test_clamp_bounds_delta():
    model, clean, pos = _setup("llama")
    edit = multedit(model, clean, pos, 7, MultEditSettings(layer=0, steps=10, lr=1.0, clamp=1e-4))
    assert edit.info["delta_norm"] <= 1e-4 * edit.info["v0_norm"] * (1 + 1e-5)
    edit.undo()


@pytest.mark.parametrize("norm", [None, 1e-3])
def test_finetune_baselines(norm):
    model, clean, _ = _setup("phi")
    with torch.no_grad():
        logits = model(**clean).logits[0, -1]
    target = int(logits.argmin())
    p0 = float(torch.softmax(logits, -1)[target])
    edit = finetune(model, clean, target, FinetuneSettings(layer=1, steps=10, lr=1e-2, norm=norm))
    with torch.no_grad():
        p1 = float(target_logprob(model, clean, target).exp())
    assert p1 > p0
    if norm is not None:
        assert edit.info["max_abs_change"] <= norm + 1e-7
    edit.undo()
    assert edit.undone() and edit.weight.grad is None


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_finetune_equals_plain_loop_from_pixels(arch):
    """The baseline runs the vision tower once (W lies after it): the same weights and
    p(target) history as Adam on W with a full forward from pixels at every step."""
    model, clean, _ = _setup(arch)
    with torch.no_grad():
        target = int(model(**clean).logits[0, -1].argmin())
    settings = FinetuneSettings(layer=0, steps=8, lr=1e-2)
    edit = finetune(model, clean, target, settings)
    fast = edit.weight.detach().clone()
    history = edit.info["p_target_by_step"]
    edit.undo()
    w = output_projection(locate(model), 0).weight
    opt = torch.optim.Adam([w], lr=settings.lr)
    reference = []
    for _ in range(settings.steps):
        opt.zero_grad()
        logp = torch.log_softmax(model(**clean).logits[0, -1], -1)[target]
        reference.append(float(logp.detach().exp()))
        (-logp).backward()
        opt.step()
    assert history[-1] - history[0] > 100 * 1e-6  # the edit moves p(target) far more
    torch.testing.assert_close(
        torch.tensor(history[:-1]), torch.tensor(reference), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(fast, w.detach(), atol=1e-6, rtol=0)
    w.grad = None
    edit.undo()
