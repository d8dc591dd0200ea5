"""The fast MultiModalCausalTrace engine. It is exact (it matches tracing.reference to <= 1e-5 in
float32) and it executes, per question, at most the FLOPs an exact trace needs:

- Two ordinary passes, shared by every kind and window (`record_passes`): the clean run records
  the output of every site kind (hidden, mlp, attn) at every layer; the corrupted run records
  every layer's input (the residual stream) and every layer's keys and values. Both compute
  logits at the last position only.
- Causal start and layer skipping: restoring position t cannot change any position before t,
  and below a window's lowest layer lo the restored run equals the corrupted run. A cell
  therefore needs only positions t.. through layers lo.. (the minimum, tracing.batching).
- The joining layer in one pass per layer: at lo itself only position t differs from the
  corrupted run (later positions read keys and values computed from the corrupted input). So
  one pass of layer lo with `kind` restored at every position gives, at row t, layer lo's
  output for every cell at t whose window starts at lo (`_Runner.join`), and the cell starts
  at lo + 1 from it and the corrupted input there.
- Batches by position, rows joining at their own layer: the cells of one position, of every
  kind and window, run as one batch (or a few of at most `batch_size` rows), ordered by lo; the
  rows whose window starts at lo join the batch at layer lo + 1. No row runs a layer or a
  position it does not need.
- A shared prefix: the corrupted keys and values before t are the same for every row. They are
  kept once and never copied per row; tracing.prefix_attention attends every row's queries to
  them (a fused SDPA kernel with the rows folded into the query length, where torch offers one
  that returns the log-sum-exp) and merges that exactly with the row's own causal suffix.
- Repeated queries attend to the prefix once: a row's input after t at layer l depends only on
  its values at t below l - 1 (`_Runner._same`). At the layer a row joins it is the corrupted
  input, for every row joining there; one layer further, a window-1 row and the window-3 row
  of the same kind and lowest layer still agree. Such rows have the same queries after t, and
  their prefix part is computed once (about 8% of the prefix work in the speed benchmark).
- The last layer: only its last position reaches the LM head, so its attention computes the
  last query only and its MLP the last position only (a pre-hook slices the MLP's input; the
  layer adds that one row to every position and only the last is read). Before the last
  position, the last layer's restorations at t are dropped: nothing reads them.
- Exact zeros, not run: restoring a position before the corruption changes nothing, and
  restoring a window of the last layer alone changes nothing unless t is the last position.
  Those cells get p_corr (the reference tests check both invariants).

The text model's own forward runs every batch (other layers pass their input through, keeping
their index), with its recorded position ids (3-D for M-RoPE) from t, its windows and its head.
What it cannot recompute exactly (PaliGemma's bidirectional prefix) is refused (`Unsupported`).

Where the time goes (benchmarks/trace_speed.py, one thread): about half in the prefix kernel at
about 1 ns per query-key pair at head size 16, its asymptotic rate; a quarter in the linear maps
at torch.mm's peak rate; the rest in the decoder's own elementwise work and Python, and in the
rows' causal suffixes (about 9%). So only doing less work (as above) gains.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from mmtrace.models import language, masks
from mmtrace.models.hooks import (
    capture,
    first_output,
    input_hooks,
    layer_input,
    output_hooks,
    replace_first_output,
    replace_layer_input,
)
from mmtrace.models.lookup import SITES, DecoderBlocks, locate, parent_of
from mmtrace.models.scoring import answer_probs, last_logits
from mmtrace.tracing import prefix_attention
from mmtrace.tracing.batching import Cell, batches, cells, runnable
from mmtrace.tracing.noise import EmbeddingNoise, applying
from mmtrace.tracing.reference import TraceResult


class Unsupported(RuntimeError):
    """The engine cannot trace this model or input exactly (the message says why); the exact
    reference can (tracing.gate routes there)."""


@dataclass
class Passes:
    """A question's clean and corrupted runs, recorded once for all its restorations."""

    clean_logits: torch.Tensor  # [vocab], last position
    corrupted_logits: torch.Tensor  # [vocab], last position
    sites: dict[str, dict[int, torch.Tensor]]  # kind -> layer -> clean output [1, seq, d]
    inputs: dict[int, torch.Tensor]  # layer -> corrupted input [1, seq, d]
    kv: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]  # attention -> corrupted keys, values
    first: int  # the first corrupted position (seq if nothing is corrupted)
    seq: int
    positions: torch.Tensor  # the text model's position ids [..., seq] in the corrupted run
    obstacle: str | None = None  # why the engine cannot trace this input exactly, if it cannot

    def probs(self, answer_id: int) -> tuple[float, float]:
        """(p_clean, p_corr) of the answer token."""
        return (
            float(answer_probs(self.clean_logits, answer_id)),
            float(answer_probs(self.corrupted_logits, answer_id)),
        )


@torch.no_grad()
def record_passes(
    model,
    clean: dict,
    corrupted: dict,
    noise: EmbeddingNoise | None = None,
    kinds: Sequence[str] = SITES,
) -> Passes:
    """Run the clean pass (recording `kinds` at every layer) and the corrupted pass (recording
    every layer's input, keys and values), each once."""
    ids_c, ids_x = clean["input_ids"][0], corrupted["input_ids"][0]
    if ids_c.shape != ids_x.shape:
        raise ValueError("clean and corrupted inputs must have the same shape")
    blocks = locate(model)
    n, seq = len(blocks), ids_c.shape[0]
    starts = (ids_c != ids_x).nonzero().flatten().tolist() + (noise.positions if noise else [])
    first = min(starts, default=seq)
    with ExitStack() as stack:
        sites = {k: stack.enter_context(capture(blocks, k, range(n))) for k in kinds}
        final = stack.enter_context(language.final_hidden(model))
        clean_logits = last_logits(model, clean)

    inputs: dict[int, torch.Tensor] = {}

    def recorder(i: int):
        def hook(_m, args, kwargs):
            inputs[i] = layer_input(args, kwargs).detach()

        return hook

    with (
        input_hooks(((blocks.layers[i], recorder(i)) for i in range(n)), with_kwargs=True),
        applying(model, noise),
        language.recording(model) as calls,
        masks.recording(blocks) as found,
    ):
        out = model(**corrupted, **language.full_cache(model), use_cache=True, logits_to_keep=1)
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    if cache is None:
        raise ValueError(f"{type(model).__name__} returned no KV cache")
    attn = [blocks.module("attn", i) for i in range(n)]
    kv = {}
    for i, m in enumerate(attn):
        layer = cache.layers[getattr(m, "layer_idx", i)]
        kv[m] = (layer.keys, layer.values)
    obstacle = language.head_mismatch(
        model, final["hidden"][0, -1], clean_logits
    ) or masks.obstacle(blocks, found, [k for k, _ in kv.values()], first, seq)
    return Passes(
        clean_logits, out.logits[0, -1], sites, inputs, kv, first, seq, calls[-1].position_ids,
        obstacle,
    )  # fmt: skip


class _Batch:
    """What the persistent hooks of `_batch_hooks` read while one forward pass runs."""

    def __init__(self) -> None:
        self.t = 0  # the restored position, batch position 0
        self.span = 1  # positions restored from t on (all of them when computing `joined`)
        self.joining: dict[int, torch.Tensor] = {}  # layer -> inputs of the rows joining there
        self.patches: dict[tuple[str, int], torch.Tensor] = {}  # (kind, layer) -> row indices
        self.tail = False  # whether the last layer's MLP runs at the last position only
        self.start: tuple[int, torch.Tensor] | None = None  # (layer, its input) for the pass


@contextmanager
def _batch_hooks(
    blocks: DecoderBlocks, passes: Passes, kinds: Sequence[str], state: _Batch
) -> Iterator[None]:
    """Pre-hooks that append the rows joining at each layer, and output hooks that restore the
    clean value at positions t..t+span-1 in the rows listed for each (kind, layer). With `tail`,
    the last layer's MLP gets the last position only: the layer adds its output to every
    position, and only the last one is read."""

    def joiner(layer: int):
        def hook(_m, args, kwargs):
            new = state.joining.get(layer)
            start = state.start is not None and state.start[0] == layer
            if new is None and not start:
                return None
            # the pass's first layer gets its input as given (whatever the text model does to
            # `inputs_embeds` before its layers: it is a layer input, not an embedding)
            hidden = state.start[1] if start else layer_input(args, kwargs)
            if new is not None:
                hidden = torch.cat([hidden, new.to(hidden.dtype)])
            return replace_layer_input(args, kwargs, hidden)

        return hook

    def restorer(kind: str, layer: int):
        def hook(_m, _i, out):
            rows = state.patches.get((kind, layer))
            if rows is None:
                return None
            hidden = first_output(out).clone()
            src = passes.sites[kind][layer][0, state.t : state.t + state.span]
            hidden[rows, : state.span] = src.to(hidden.dtype)
            return replace_first_output(out, hidden)

        return hook

    def tail(_m, args, kwargs):
        if not state.tail:
            return None
        return replace_layer_input(args, kwargs, layer_input(args, kwargs)[:, -1:])

    n = len(blocks)
    with (
        input_hooks(((blocks.layers[i], joiner(i)) for i in range(n)), with_kwargs=True),
        input_hooks([(blocks.module("mlp", n - 1), tail)], with_kwargs=True),
        output_hooks((blocks.module(k, i), restorer(k, i)) for k in kinds for i in range(n)),
    ):
        yield


@dataclass
class _Plan:
    """A batch's make-up, as `_Runner.run` uses it: the layer it starts at, its restorations
    (`_Batch.patches`), the layers where rows join, and its repeated queries (`_Runner._same`)."""

    start: int
    patches: dict[tuple[str, int], torch.Tensor]
    joins: list[int]
    same: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]


class _Runner:
    """Runs the restored rows of one question through the text model's own forward."""

    def __init__(self, model, blocks: DecoderBlocks, passes: Passes, kinds: tuple[str, ...]):
        self.model, self.blocks, self.passes, self.kinds = model, blocks, passes, kinds
        self.parent = parent_of(model, blocks.layers)[0]
        self.state = _Batch()
        self.joined: dict[tuple[str, int], torch.Tensor] = {}
        self.attn = None  # the shared-prefix attention's state, while `active`
        self.attn_modules = [blocks.module("attn", i) for i in range(len(blocks))]
        self.plans: dict[tuple, _Plan] = {}  # `_plan`'s cache

    @contextmanager
    def active(self, fused: bool | None) -> Iterator[_Runner]:
        """The shared-prefix attention and the batch hooks, for the block."""
        with (
            prefix_attention.shared_prefix(self.blocks.layers, {}, fused) as self.attn,
            _batch_hooks(self.blocks, self.passes, self.kinds, self.state),
        ):
            yield self

    def forward(self, t: int, start: int, stop: int, hidden: torch.Tensor) -> torch.Tensor:
        """The text model's layers start..stop-1 (then its final norm) on `hidden`, positions
        t.., with the current joins and restorations; the prefix is the corrupted run's."""
        p, n = self.passes, len(self.blocks)
        self.state.t = t
        for m, (k, v) in p.kv.items():
            self.attn.kv[m] = (k[:, :, :t], v[:, :, :t])
        self.attn.last = self.blocks.module("attn", n - 1) if stop == n else None
        calls = self.attn.calls
        # the model's own position ids of positions t.. (3-D for M-RoPE; PaliGemma's start
        # at 1); layers outside start..stop-1 pass their input through, keeping their indices
        self.state.start = (start, hidden)
        try:
            with language.only_layers(self.blocks.layers, start, stop):
                res = self.parent(
                    inputs_embeds=hidden, position_ids=p.positions[..., t:], use_cache=False
                )
        finally:
            self.state.start = None
        if self.attn.calls - calls != stop - start:
            raise RuntimeError(
                f"{type(self.model).__name__} does not route attention through AttentionInterface"
            )
        return res.last_hidden_state

    def join(self, lows: set[int]) -> None:
        """`joined[(kind, l)]`: the output of layer l, at every position from the corruption
        on, when `kind` is restored there at every position. A position's output at l depends
        on the layer's input (corrupted) at that and earlier positions and on its own
        restoration only, so row t of it is the output of layer l of every cell at t whose
        window starts at l: such a cell joins the batch at l + 1."""
        p, first = self.passes, self.passes.first
        for kind in self.kinds:
            if kind == "hidden":  # the restored output is the clean one
                for low in lows:
                    self.joined[(kind, low)] = p.sites[kind][low][0, first:]
        computed = [k for k in self.kinds if k != "hidden"]
        if not computed:
            return
        self.state.span, self.state.joining = p.seq - first, {}
        rows = torch.arange(len(computed), device=p.inputs[0].device)
        self.attn.same = {}
        for low in sorted(lows):
            self.state.patches = {(k, low): rows[r : r + 1] for r, k in enumerate(computed)}
            hidden = p.inputs[low][:, first:].expand(len(computed), -1, -1)
            with capture(self.blocks, "hidden", [low]) as out:
                self.forward(first, low, low + 1, hidden)
            for r, k in enumerate(computed):
                self.joined[(k, low)] = out[low][r]
        self.state.span = 1

    def _inputs(self, chunk: list[Cell], layer: int, t: int) -> torch.Tensor:
        """The inputs to `layer` of the rows of `chunk` (positions t..) joining there."""
        p, rows = self.passes, [c for c in chunk if c.low + 1 == layer]
        at_t = torch.stack([self.joined[(c.kind, c.low)][t - p.first] for c in rows])
        if layer == len(self.blocks):  # nothing runs after t: t is the last position
            return at_t.unsqueeze(1)
        rest = p.inputs[layer][:, t + 1 :].expand(len(rows), -1, -1)
        return torch.cat([at_t.unsqueeze(1).to(rest.dtype), rest], dim=1)

    def _same(self, chunk: list[Cell], start: int) -> dict[nn.Module, tuple]:
        """Per attention module, the rows of `chunk` whose queries after t repeat another row's
        (prefix_attention.shared_prefix's `same`), for the layers where some do.

        A row's input at layer l and a position after t depends on the corrupted input there
        and on the row's values at t in layers below l only: it is the corrupted input itself
        at the row's joining layer (for every row joining there, of any kind), and otherwise a
        function of the row's kind and of its restorations below l - 1 (its values at t up to
        layer l - 1's input). Rows with the same such key have the same queries after t."""
        device = self.passes.inputs[0].device
        same = {}
        for layer in range(start, len(self.blocks)):
            first: dict[tuple, int] = {}
            keep, inv = [], []
            for row, c in enumerate(chunk):
                if c.low >= layer:  # not joined yet (the chunk is ordered by low)
                    break
                if c.low + 1 == layer:
                    key: tuple = ()
                else:
                    key = (c.kind, c.restored[: bisect_right(c.restored, layer - 2)])
                if key not in first:
                    first[key] = len(keep)
                    keep.append(row)
                inv.append(first[key])
            if len(keep) < len(inv):
                same[self.attn_modules[layer]] = (
                    torch.tensor(keep, device=device),
                    torch.tensor(inv, device=device),
                )
        return same

    def _plan(self, chunk: list[Cell], tail: bool) -> _Plan:
        """What `run` sets up for a batch, which depends only on the rows' kinds and windows
        (not on t): every position's batches of the same make-up share one plan."""
        key = (tail, tuple((c.kind, c.restored) for c in chunk))
        plan = self.plans.get(key)
        if plan is not None:
            return plan
        n, start = len(self.blocks), chunk[0].low + 1
        top = n - 1 if tail else n
        patches: dict[tuple[str, int], list[int]] = defaultdict(list)
        for row, c in enumerate(chunk):
            for layer in c.restored[1:]:
                if layer < top:
                    patches[(c.kind, layer)].append(row)
        device = self.passes.inputs[0].device
        plan = _Plan(
            start=start,
            patches={k: torch.tensor(v, device=device) for k, v in patches.items()},
            joins=sorted({c.low + 1 for c in chunk} - {start}),
            same=self._same(chunk, start),
        )
        self.plans[key] = plan
        return plan

    def run(self, chunk: list[Cell]) -> torch.Tensor:
        """Last-position logits of one batch (cells of one position, ordered by lowest window
        layer), one row per cell."""
        n, t = len(self.blocks), chunk[0].t
        # Before the last position, nothing the last layer computes at t is read: its
        # restorations there are dropped, and its MLP runs at the last position only.
        tail = t < self.passes.seq - 1
        plan = self._plan(chunk, tail)
        self.state.tail = tail
        self.state.patches = plan.patches
        self.state.joining = {layer: self._inputs(chunk, layer, t) for layer in plan.joins}
        self.attn.same = plan.same
        hidden = self.forward(t, plan.start, n, self._inputs(chunk, plan.start, t))
        self.state.tail = False
        return language.head(self.model, hidden[:, -1])


@torch.no_grad()
def trace_many(
    model,
    clean: dict,
    corrupted: dict,
    answer_id: int,
    kinds: Sequence[str],
    windows: Sequence[int],
    positions: Sequence[int],
    style: str = "centered",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    noise: EmbeddingNoise | None = None,
    passes: Passes | None = None,
    fused: bool | None = None,
) -> dict[tuple[str, int], TraceResult]:
    """`trace` for every kind and window at once: {(kind, window): TraceResult}, with one clean
    and one corrupted pass (`passes`, recorded here unless given) and the cells of every kind
    and window batched together. `fused=False` keeps attention on the eager path."""
    blocks = locate(model)
    n = len(blocks)
    layers = list(range(n)) if layers is None else list(layers)
    if passes is None:
        passes = record_passes(model, clean, corrupted, noise, tuple(dict.fromkeys(kinds)))
    if passes.obstacle is not None:
        raise Unsupported(f"{type(model).__name__}: {passes.obstacle}")
    p_clean, p_corr = passes.probs(answer_id)
    out = {
        (k, w): torch.full((len(positions), len(layers)), p_corr, dtype=torch.float64)
        for k in kinds
        for w in windows
    }
    todo = cells(kinds, windows, positions, layers, passes.first, n, style)
    todo = runnable(todo, n, passes.seq)
    with _Runner(model, blocks, passes, tuple(dict.fromkeys(kinds))).active(fused) as runner:
        runner.join({c.low for c in todo})
        for chunk in batches(todo, batch_size, n):
            probs = answer_probs(runner.run(chunk), answer_id).tolist()
            for c, p in zip(chunk, probs, strict=True):
                out[(c.kind, c.window)][c.i, c.j] = p
    return {
        (k, w): TraceResult(k, list(positions), layers, p_clean, p_corr, p)
        for (k, w), p in out.items()
    }


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
    res = trace_many(
        model, clean, corrupted, answer_id, [kind], [window], positions, style, layers,
        batch_size, noise,
    )  # fmt: skip
    return res[(kind, window)]
