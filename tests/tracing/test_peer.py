"""Causal tracing cross-checked against an independent implementation: nnsight.

Both of our tracers (the fast engine and the cell-by-cell reference) reach the model through
mmtrace.models.hooks and mmtrace.models.lookup, so a shared mistake there (the wrong module,
the wrong tuple element, the wrong position) would make them agree with each other and still be
wrong. Here a restored cell is recomputed with a peer library's own intervention API instead:
nnsight saves the clean run's outputs and writes them into the corrupted run at module paths
spelled out below, with no mmtrace code involved, and the probabilities must match to <= 1e-5.

nnsight is a test-only dependency (the `dev` extra). It is imported lazily in a fixture, so that
collecting the suite does not pull it in: on import it mounts a `.save` method on every Python
object and installs a process-wide guard over glibc's backtrace(). The tests call the function
form `nnsight.save(value)` and so do not rely on that mount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import pytest
import torch
from support.tiny_models import MODELS, N_LAYERS, inputs

from mmtrace.tracing.engine import trace
from mmtrace.tracing.reference import trace_reference

KINDS = ("hidden", "mlp", "attn")
TOL = 1e-5

# model builder, multimodal?, path of the text decoder's layer list (written out by hand, so the
# peer does not share mmtrace.models.lookup.locate with the tracers under test)
LAYERS_PATH = {
    "llava-llama": "model.language_model.layers",
    "llava-phi": "model.language_model.layers",
    "llama": "model.layers",
}


@pytest.fixture(scope="module")
def nnsight():
    return pytest.importorskip("nnsight", minversion="0.8")


@dataclass
class Case:
    model: torch.nn.Module
    peer: object  # nnsight.NNsight wrapping `model`
    layers: object  # the peer's envoy of the text decoder's layer list
    clean: dict
    corrupted: dict
    first: int  # first corrupted position
    answer: int
    clean_caches: dict = field(default_factory=dict)  # kind -> the peer's clean outputs


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request, nnsight) -> Case:
    """One tiny model per parameter, built once for the module: the tests only read it."""
    build, multimodal = MODELS[request.param]
    layers_path = LAYERS_PATH[request.param]
    model = build()
    clean, corrupted, first = inputs(multimodal)
    with torch.no_grad():
        answer = int(model(**clean).logits[0, -1].argmax())
    peer = nnsight.NNsight(model)
    layers = reduce(getattr, layers_path.split("."), peer)
    assert len(layers) == N_LAYERS
    return Case(model, peer, layers, clean, corrupted, first, answer)


def _site(layers, kind: str, layer: int):
    """The envoy whose output is restored. Decoder layers return a tensor in transformers 5;
    attention modules return (output, weights), so the restored value is element 0."""
    block = layers[layer]
    return {"hidden": block, "mlp": block.mlp, "attn": block.self_attn}[kind]


def _value(envoy, kind: str):
    return envoy.output[0] if kind == "attn" else envoy.output


def _peer_prob(nnsight, case: Case, inputs: dict) -> float:
    with torch.no_grad(), case.peer.trace(**inputs):
        p = nnsight.save(torch.softmax(case.peer.output.logits[0, -1].float(), -1)[case.answer])
    return float(p)


def _peer_clean_cache(nnsight, case: Case, kind: str) -> list[torch.Tensor]:
    """The clean run's output of `kind` at every layer, read in execution order (nnsight
    raises OutOfOrderError otherwise) and kept per kind for the module."""
    if kind not in case.clean_caches:
        cache: list[torch.Tensor] = []
        with torch.no_grad(), case.peer.trace(**case.clean):
            for layer in range(N_LAYERS):
                cache.append(nnsight.save(_value(_site(case.layers, kind, layer), kind).clone()))
        case.clean_caches[kind] = cache
    return case.clean_caches[kind]


def _peer_restored(nnsight, case: Case, kind: str, position: int, restored: list[int]) -> float:
    """p(answer) in the corrupted run with `kind` at `position` set to its clean value in each
    of the `restored` layers (ascending, so the edits come in execution order)."""
    cache = _peer_clean_cache(nnsight, case, kind)
    with torch.no_grad(), case.peer.trace(**case.corrupted):
        for layer in restored:
            _value(_site(case.layers, kind, layer), kind)[0, position] = cache[layer][0, position]
        p = nnsight.save(torch.softmax(case.peer.output.logits[0, -1].float(), -1)[case.answer])
    return float(p)


def _ours(case: Case, kind: str, positions: list[int], window: int, style: str, layers=None):
    """The fast engine and the reference on the same cells."""
    args = (case.model, case.clean, case.corrupted, case.answer, kind, positions, window, style)
    return trace(*args, layers=layers, batch_size=7), trace_reference(*args, layers=layers)


@pytest.mark.parametrize("kind", KINDS)
def test_window_1_cells_match_nnsight(nnsight, case, kind):
    """Every layer at four positions: the token before the corruption (restoring it must be a
    no-op, which the engine assumes without running anything), both constraint tokens and the
    last token."""
    seq = case.clean["input_ids"].shape[1]
    positions = [case.first - 1, case.first, case.first + 1, seq - 1]
    p_clean = _peer_prob(nnsight, case, case.clean)
    p_corr = _peer_prob(nnsight, case, case.corrupted)
    expected = torch.tensor(
        [
            [_peer_restored(nnsight, case, kind, t, [layer]) for layer in range(N_LAYERS)]
            for t in positions
        ],
        dtype=torch.float64,
    )
    # The comparison must be able to fail: the corruption and the restorations move p(answer)
    # by far more than the tolerance.
    assert abs(p_clean - p_corr) > 100 * TOL
    assert (expected[1:] - p_corr).abs().max().item() > 100 * TOL

    for result in _ours(case, kind, positions, window=1, style="centered"):
        assert result.p_clean == pytest.approx(p_clean, abs=TOL)
        assert result.p_corr == pytest.approx(p_corr, abs=TOL)
        assert (result.p_restored - expected).abs().max().item() <= TOL
        assert (result.ie - (expected - p_corr)).abs().max().item() <= TOL


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("window", "style", "layer", "restored"),
    [
        (3, "centered", 1, [0, 1, 2]),  # ROME: 3 layers centred on l
        (1, "radius", 2, [1, 2, 3]),  # the release: layers [l - 1, l + 1]
        (3, "centered", 0, [0, 1]),  # clipped at the first layer
        (1, "radius", 3, [2, 3]),  # clipped at the last layer
    ],
)
def test_3_layer_window_matches_nnsight(nnsight, case, kind, window, style, layer, restored):
    """One cell at the first constraint token restored over a 3-layer window, in both window
    conventions and where the window is clipped (the peer's layer lists are written out here,
    not computed by mmtrace.tracing.windows)."""
    expected = _peer_restored(nnsight, case, kind, case.first, restored)
    for result in _ours(case, kind, [case.first], window, style, layers=[layer]):
        assert abs(result.p_restored[0, 0].item() - expected) <= TOL
