"""The fast MultiModalCausalTrace engine. It is exact (it matches tracing.reference to <= 1e-5 in
float32) and it saves work in five ways:

- Causal start: attention is causal, so restoring position t cannot change any position before t.
  A cell therefore only recomputes positions t.. (a batch starts at its smallest t). Everything
  before comes from the corrupted run: its keys and values are computed once and reused, and a
  batch row whose t is later than the batch's start recomputes the corrupted values it already
  holds, which is wasted work but still exact.
- Layer skipping: below a window's lowest layer the restored run equals the corrupted run. Each
  batch starts at its cells' lowest such layer, from the corrupted residual stream cached once.
- A shared prefix: the corrupted keys and values before the batch's start are the same for every
  row. They are kept once (batch 1) and never copied per row: a registered attention function
  scores each row's queries against that prefix and against the row's own (causal) suffix and
  takes one softmax over both, which is the same attention as over the concatenated keys.
- Batching: cells run as batches, one row per cell, each row with its own restoration. Cells are
  tiled by (lowest window layer, position) so that a batch wastes few layers and positions; the
  tile shape minimises a simple cost model (rows x layers x positions, plus a per-layer overhead).
- Exact zeros: restoring a position before the corruption changes nothing. Those cells are filled
  with p_corr without running anything (the reference tests check this invariant).

Only the last position's hidden state goes through the LM head. The text model's own forward is
used (layers are run through its layer list, sliced), so models are located by structure and any
decoder whose attention goes through transformers' AttentionInterface works.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from mmtrace.models import attention
from mmtrace.models.hooks import (
    capture,
    first_output,
    input_hooks,
    layer_input,
    output_hooks,
    replace_first_output,
)
from mmtrace.models.lookup import DecoderBlocks, locate, parent_of
from mmtrace.models.scoring import answer_prob, answer_probs
from mmtrace.tracing.noise import EmbeddingNoise, applying
from mmtrace.tracing.reference import TraceResult
from mmtrace.tracing.windows import window_layers

_SPLIT = "mmtrace_shared_prefix"
# Per-layer cost of running a batch, in row-positions: kernel launches and Python per layer are
# worth about this many rows x positions of compute. It only shapes the tiling, never the result.
_LAYER_OVERHEAD = 64


class _PrefixState:
    """What the registered attention function reads: the shared prefix per attention module."""

    def __init__(self) -> None:
        self.kv: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        self.calls = 0


_STATE = _PrefixState()


def _shared_prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Causal attention of a batch-b suffix over a batch-1 prefix plus its own keys.

    query [b, H, q, d]; key and value [b, Hkv, q, d] (the suffix only: no cache is passed); the
    prefix is [1, Hkv, s, d]. Returns [b, q, H, d] like transformers' eager attention."""
    for unsupported in ("sliding_window", "softcap", "s_aux"):
        if kwargs.get(unsupported) is not None:
            raise NotImplementedError(f"shared-prefix attention does not support {unsupported}")
    if dropout and module.training:
        raise NotImplementedError("tracing runs in eval mode")
    pk, pv = _STATE.kv[module]
    _STATE.calls += 1
    b, h, q, d = query.shape
    hkv = key.shape[1]
    g = h // hkv
    s = pk.shape[2]
    # Heads sharing a KV head are laid out as [Hkv, b, g*q, d], so the prefix product is one
    # batched matmul per KV head over all rows at once.
    qh = query.unflatten(1, (hkv, g)).transpose(0, 1).contiguous().view(hkv, b, g * q, d)
    qh = qh * scaling
    scores_s = torch.matmul(qh, key.transpose(0, 1).transpose(2, 3)).float()  # [Hkv, b, g*q, q]
    future = torch.ones(q, q, dtype=torch.bool, device=query.device).triu(1).repeat(g, 1)
    scores_s.masked_fill_(future, float("-inf"))
    top = scores_s.amax(-1, keepdim=True)
    if s:
        scores_p = torch.matmul(qh.view(hkv, b * g * q, d), pk[0].transpose(1, 2)).float()
        scores_p = scores_p.view(hkv, b, g * q, s)
        top = torch.maximum(top, scores_p.amax(-1, keepdim=True))
    # One softmax over prefix and suffix keys together, without concatenating them: both parts
    # are exponentiated against the same maximum and normalised by their joint sum.
    scores_s.sub_(top).exp_()
    total = scores_s.sum(-1, keepdim=True)
    out = torch.matmul(scores_s.to(value.dtype), value.transpose(0, 1))
    if s:
        scores_p.sub_(top).exp_()
        total += scores_p.sum(-1, keepdim=True)
        weights_p = scores_p.to(value.dtype).view(hkv, b * g * q, s)
        out += torch.matmul(weights_p, pv[0]).view(hkv, b, g * q, d)
    out = (out.float() / total).to(query.dtype)
    return out.view(hkv, b, g, q, d).permute(1, 3, 0, 2, 4).reshape(b, q, h, d), None


def _no_mask(*_args, **_kwargs) -> None:
    """The shared-prefix attention builds its own causal mask (inputs are single, unpadded)."""
    return None


attention.register(_SPLIT, _shared_prefix_attention, _no_mask)


@contextmanager
def _shared_prefix(
    decoder: nn.Module, kv: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]
) -> Iterator[None]:
    """Route the text model's attention through `_shared_prefix_attention` with prefix `kv`."""
    _STATE.kv, _STATE.calls = kv, 0
    try:
        with attention.attention_implementation(decoder, _SPLIT):
            yield
    finally:
        _STATE.kv = {}


@contextmanager
def _only_layers_from(parent: nn.Module, attr: str, layers: nn.ModuleList, start: int):
    """Run the text model from layer `start` on. Each attention module keeps its own identity,
    so the shared prefix stays matched to its layer."""
    setattr(parent, attr, nn.ModuleList(list(layers)[start:]))
    try:
        yield
    finally:
        setattr(parent, attr, layers)


@contextmanager
def _patch_rows(
    blocks: DecoderBlocks,
    kind: str,
    plan: dict[int, list[tuple[int, int, int]]],
    clean: dict[int, torch.Tensor],
):
    """plan[layer] = [(row, suffix position, absolute position)]: restore those entries."""
    hooks = []
    for layer, entries in plan.items():
        src = clean[layer]
        rows = torch.tensor([e[0] for e in entries], device=src.device)
        rel = torch.tensor([e[1] for e in entries], device=src.device)
        src = src[0, torch.tensor([e[2] for e in entries], device=src.device)]

        def hook(_m, _i, out, rows=rows, rel=rel, src=src):
            hidden = first_output(out).clone()
            hidden[rows, rel] = src.to(hidden.dtype)
            return replace_first_output(out, hidden)

        hooks.append((blocks.module(kind, layer), hook))
    with output_hooks(hooks):
        yield


Cell = tuple[int, int, int, list[int]]  # (position index, layer index, position, window layers)


def batch_plan(
    positions: Sequence[int],
    layers: Sequence[int],
    first: int,
    n_layers: int,
    seq: int,
    window: int,
    style: str,
    batch_size: int,
) -> list[list[Cell]]:
    """The batches `trace` runs; cells at positions before `first` are exact zeros, not run.

    Cells are cut into bands of `width` consecutive lowest window layers, each band sorted by
    position and split into equal batches of at most `batch_size`; the width with the smallest
    modelled cost wins. A batch costs (layers it runs) x (per-layer overhead + rows x positions
    it runs); a batch runs from its lowest window layer and its smallest position."""
    cells: list[Cell] = [
        (i, j, t, window_layers(layer, window, n_layers, style))
        for i, t in enumerate(positions)
        if t >= first
        for j, layer in enumerate(layers)
    ]
    if not cells:
        return []
    lows = sorted({c[3][0] for c in cells})

    def tiled(width: int) -> tuple[float, list[list[Cell]]]:
        bands: dict[int, list[Cell]] = defaultdict(list)
        for c in cells:
            bands[lows.index(c[3][0]) // width].append(c)
        cost, out = 0.0, []
        for band in bands.values():
            band.sort(key=lambda c: (c[2], c[3][0]))
            k = math.ceil(len(band) / batch_size)
            size = math.ceil(len(band) / k)
            for i in range(0, len(band), size):
                chunk = band[i : i + size]
                lo = min(c[3][0] for c in chunk)
                cost += (n_layers - lo) * (_LAYER_OVERHEAD + len(chunk) * (seq - chunk[0][2]))
                out.append(chunk)
        return cost, out

    return min((tiled(w) for w in range(1, len(lows) + 1)), key=lambda p: p[0])[1]


@torch.no_grad()
def trace(
    model,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kind: str,
    positions: Sequence[int],
    window: int = 1,
    style: str = "centered",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    noise: EmbeddingNoise | None = None,
) -> TraceResult:
    """Same contract as `tracing.reference.trace_reference`, computed with shared work."""
    ids_c, ids_x = clean["input_ids"][0], corrupted["input_ids"][0]
    if ids_c.shape != ids_x.shape:
        raise ValueError("clean and corrupted inputs must have the same shape")
    blocks = locate(model)
    n = len(blocks)
    layers = list(range(n)) if layers is None else list(layers)
    seq = ids_c.shape[0]
    starts = (ids_c != ids_x).nonzero().flatten().tolist() + (noise.positions if noise else [])
    first = min(starts, default=seq)

    with capture(blocks, kind, range(n)) as clean_cache:
        p_clean = answer_prob(model, clean, answer_id)

    # The corrupted run, once: each layer's input (the residual stream) and its keys and values.
    layer_inputs: dict[int, torch.Tensor] = {}

    def recorder(i: int):
        def hook(_m, args, kwargs):
            layer_inputs[i] = layer_input(args, kwargs).detach()

        return hook

    with (
        input_hooks(((blocks.layers[i], recorder(i)) for i in range(n)), with_kwargs=True),
        applying(model, noise),
    ):
        out = model(**corrupted, use_cache=True)
    p_corr = float(answer_probs(out.logits[0, -1], answer_id))
    kv_cache = getattr(out, "cache", None)
    if kv_cache is None:
        kv_cache = getattr(out, "past_key_values", None)
    if kv_cache is None:
        raise ValueError(f"{type(model).__name__} returned no KV cache")
    attn = [blocks.module("attn", i) for i in range(n)]
    cache_layers = [kv_cache.layers[getattr(m, "layer_idx", i)] for i, m in enumerate(attn)]
    corrupted_kv = {m: (c.keys, c.values) for m, c in zip(attn, cache_layers, strict=True)}

    p_restored = torch.full((len(positions), len(layers)), p_corr, dtype=torch.float64)
    plan = batch_plan(positions, layers, first, n, seq, window, style, batch_size)
    parent, attr = parent_of(model, blocks.layers)
    head = model.get_output_embeddings()
    for chunk in plan:
        b, s, lo = len(chunk), chunk[0][2], min(c[3][0] for c in chunk)
        restore: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for row, (_i, _j, t, win) in enumerate(chunk):
            for w in win:
                restore[w].append((row, t - s, t))
        hidden = layer_inputs[lo][:, s:].expand(b, -1, -1).contiguous()
        prefix = {m: (k[:, :, :s], v[:, :, :s]) for m, (k, v) in corrupted_kv.items()}
        with (
            _only_layers_from(parent, attr, blocks.layers, lo),
            _patch_rows(blocks, kind, restore, clean_cache),
            _shared_prefix(blocks.layers, prefix),
        ):
            res = parent(
                inputs_embeds=hidden,
                position_ids=torch.arange(s, seq, device=hidden.device).unsqueeze(0),
                use_cache=False,
            )
            if _STATE.calls != n - lo:
                raise RuntimeError(
                    f"{type(model).__name__} does not route attention through AttentionInterface"
                )
        probs = answer_probs(head(res.last_hidden_state[:, -1]), answer_id).tolist()
        for row, (i, j, _t, _w) in enumerate(chunk):
            p_restored[i, j] = probs[row]
    return TraceResult(kind, list(positions), layers, p_clean, p_corr, p_restored)
