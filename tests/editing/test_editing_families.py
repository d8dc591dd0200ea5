"""MultEdit and its baselines on every family with visual tokens (tests/support/families.py):
the cached prefix's suffix runs equal the full forward (logits, and the gradient of an
intervention at the key), PaliGemma's bidirectional prefix is refused there and edited through
full forwards; an edit moves p(target) far and is undone bit for bit; the editing probes and the
fine-tuning baseline, which rerun only the language model, equal the model's full forward."""

from __future__ import annotations

import pytest
import torch
from support.families import FAMILIES, encoded, image, loaded

from mmtrace.config import MultEditSettings
from mmtrace.editing import multedit as multedit_module
from mmtrace.editing.baselines import FinetuneSettings, finetune
from mmtrace.editing.multedit import (
    adding,
    key_and_value,
    multedit,
    optimise_delta,
    target_logprob,
)
from mmtrace.models.prefix import NoPrefix, cache_prefix, run_suffix
from mmtrace.models.scoring import next_token_probs, prepare_prompts, probs_of_prepared

TOL = 1e-5
TOKENS = sorted(n for n, f in FAMILIES.items() if f.status != "refused")
CAUSAL = [n for n in TOKENS if FAMILIES[n].status == "engine"]
TARGET = 7  # a token id every tiny vocabulary has


def _runner_up(lm, enc) -> int:
    """The clean prompt's second most likely token: the edit's target."""
    with torch.no_grad():
        return int(lm.model(**enc.inputs).logits[0, -1].argsort(descending=True)[1])


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", CAUSAL)
def test_suffix_equals_full_forward_with_gradients(name):
    lm = loaded(name)
    enc = encoded(lm)
    model, start = lm.model, enc.span_positions["visual"][-1]
    with torch.no_grad():
        full = model(**enc.inputs).logits[0]
    prefix = cache_prefix(model, enc.inputs, start)
    with torch.no_grad():
        part = run_suffix(model, prefix).logits[0]
    torch.testing.assert_close(part, full[start:], atol=TOL, rtol=0)
    hidden = model.config.get_text_config().hidden_size
    delta = torch.randn(hidden, generator=torch.Generator().manual_seed(0))
    d_full, d_part = (delta.clone().requires_grad_(True) for _ in range(2))
    with adding(model, 0, start, d_full):  # the target's logit: its gradient is not tiny
        lf = model(**enc.inputs).logits[0, -1, TARGET]
    with adding(model, 0, 0, d_part):
        ls = run_suffix(model, prefix, logits_to_keep=1).logits[0, -1, TARGET]
    assert abs(float(lf.detach()) - float(full[-1, TARGET])) >= 100 * TOL
    torch.testing.assert_close(ls, lf, atol=TOL, rtol=0)
    lf.backward()
    ls.backward()
    assert d_full.grad.abs().max() >= 100 * TOL
    torch.testing.assert_close(d_part.grad, d_full.grad, atol=TOL, rtol=0)


def test_paligemma_has_no_prefix_to_cache():
    lm = loaded("paligemma")
    enc = encoded(lm)
    with pytest.raises(NoPrefix, match="before"):
        cache_prefix(lm.model, enc.inputs, enc.span_positions["visual"][-1])


@pytest.mark.parametrize("name", CAUSAL)
def test_multedit_through_the_prefix_equals_full_forwards(name, monkeypatch):
    """The value optimisation through the cached prefix takes the steps the full forwards
    (the path PaliGemma takes) take; the delta it finds moves p(target) far."""
    lm = loaded(name)
    enc = encoded(lm)
    settings = MultEditSettings(layer=0, steps=3, lr=0.5)
    key, v0 = key_and_value(lm.model, enc.inputs, 0, enc.span_positions["visual"][-1])
    target = _runner_up(lm, enc)
    args = (lm.model, enc.inputs, enc.span_positions["visual"][-1], target, v0, settings)
    fast, fast_p = optimise_delta(*args)

    def no_prefix(*_a, **_k):
        raise NoPrefix("the full forwards, for the comparison")

    monkeypatch.setattr(multedit_module, "cache_prefix", no_prefix)
    slow, slow_p = optimise_delta(*args)
    assert fast_p[-1] - fast_p[0] >= 100 * TOL
    assert fast_p == pytest.approx(slow_p, abs=TOL)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", TOKENS)
def test_multedit_writes_its_value_and_is_undone(name):
    """After the rank-one update the edited MLP maps the key to v0 + delta (up to lambda's
    pull), the optimisation moved p(target), and undo restores every weight bit for bit."""
    lm = loaded(name)
    enc = encoded(lm)
    model, position = lm.model, enc.span_positions["visual"][-1]
    original = {k: v.clone() for k, v in model.state_dict().items()}
    settings = MultEditSettings(layer=0, steps=8, lr=0.5)
    key, v0 = key_and_value(model, enc.inputs, 0, position)
    edit = multedit(model, enc.inputs, position, _runner_up(lm, enc), settings)
    history = edit.info["p_target_by_step"]
    assert history[-1] - history[0] >= 100 * TOL
    _, v1 = key_and_value(model, enc.inputs, 0, position)
    assert (v1 - v0).norm() == pytest.approx(edit.info["delta_norm"], rel=1e-2)
    edit.undo()
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", TOKENS)
def test_probes_and_finetuning_equal_the_full_forward(name):
    lm = loaded(name)
    prompts = [encoded(lm).prompt, encoded(lm).prompt.replace("building", "river")]
    images = [image(0), image(5)]
    prepared = prepare_prompts(lm, prompts, images)
    want = next_token_probs(lm, prompts, images)
    torch.testing.assert_close(probs_of_prepared(lm, prepared), want, atol=TOL, rtol=0)
    enc = encoded(lm)
    with torch.no_grad():
        before = float(target_logprob(lm.model, enc.inputs, TARGET).exp())
    edit = finetune(lm.model, enc.inputs, TARGET, FinetuneSettings(layer=0, steps=3, lr=0.05))
    assert edit.info["p_target_by_step"][0] == pytest.approx(before, abs=TOL)
    with torch.no_grad():
        after = float(target_logprob(lm.model, enc.inputs, TARGET).exp())
    assert edit.info["p_target_by_step"][-1] == pytest.approx(after, abs=TOL)
    assert after - before >= 100 * TOL
    edit.undo()
