"""Route diagnostics: the knockouts block exactly the asked queries, the probes find a linearly
decodable label and not a random one."""

from __future__ import annotations

import numpy as np
import torch
from support.tiny_models import inputs, llava

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models.encoding import encode_record
from mmtrace.models.loading import load
from mmtrace.transfer.ablation import blocking
from mmtrace.transfer.routes import hidden_at, knockouts, probe_hits


def test_blocking_only_the_given_queries_leaves_earlier_positions_alone():
    model = llava("llama")
    clean, _, _ = inputs(True)
    image = [[1, 2, 3, 4]]
    with torch.no_grad():
        base = model(**clean).logits
        with blocking(model, image, range(4), queries=[-1]):
            last_only = model(**clean).logits
    # only the last position's attention changed: every earlier position is untouched
    torch.testing.assert_close(last_only[0, :-1], base[0, :-1])
    assert not torch.allclose(last_only[0, -1], base[0, -1])


def test_knockouts_and_hidden_states_on_a_toy_model(trained, tiny_world):
    loaded = load(trained["mm-llama"], "mllm")
    rec = next(
        r for r in load_questions([tiny_world / "known.csv"]) if r.constraint_type == "single"
    )
    enc = encode_record(loaded, rec, Prompts(), tiny_world)
    out = knockouts(loaded, enc, [5])
    assert set(out) == {"clean", "last_token_blocked", "constraint_blocked"}
    assert all(0 <= v["p"] <= 1 for v in out.values())
    h = hidden_at(loaded, enc)
    n_layers = loaded.model.config.text_config.num_hidden_layers
    assert h["constraint_last"].shape[0] == h["last_token"].shape[0] == n_layers


def test_probes_find_a_decodable_label_and_not_a_random_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=200)
    x = rng.standard_normal((200, 16))
    x[:, :4] += 6 * np.eye(4)[labels]  # separable far beyond the noise
    assert probe_hits(x, labels, 5, 1.0, 0).mean() > 0.95
    shuffled = rng.permutation(labels)
    assert probe_hits(x, shuffled, 5, 1.0, 0).mean() < 0.45
