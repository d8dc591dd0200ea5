"""Attention of a batch of restored rows over one shared, corrupted prefix.

Every row of an engine batch restores the same position t, so the keys and values before t are
the corrupted run's, the same for every row. They are kept once ([1, Hkv, t, d]) and never copied
per row: the attention of a row's query is split into a part over the prefix and a part over the
row's own (causal) suffix, and the two are merged exactly.

- Fused path (where torch offers a fused attention kernel that also returns the log-sum-exp of
  the scores: `_scaled_dot_product_flash_attention_for_cpu` on CPU; flash attention in half
  precision and memory-efficient attention in float32 on CUDA): the prefix part is one SDPA call
  whose queries are every row's queries at once (the batch folded into the query length, one
  call per layer over [1, Hkv, b*g*q, d] queries and the [1, Hkv, t, d] prefix), the suffix part
  one causal SDPA call; with out_i and lse_i of each part, softmax over the union of keys is
  sum_i out_i exp(lse_i - lse), lse = logaddexp(lse_1, lse_2).
- Eager path (anywhere else): the same split with explicit scores, one softmax over both parts
  against their joint maximum.
- Repeated queries (fused path): where the caller knows that rows share their queries after
  the first position (`shared_prefix`'s `same`), only one row of each group is folded into the
  prefix call at those positions, and its result is copied to the others.

- Sliding windows (Gemma-3's local layers): a window that reaches no key (the last query is
  within it of key 0) changes nothing; one that does sends the layer to the eager path, which
  masks the keys at distance >= window from each query, in the prefix and in the suffix.

A fused path is used only after it has matched the eager path on a small probe on that device
and dtype; otherwise the eager path is used. Both are exact (float32 rounding only). The CUDA
calls follow torch's operator schemas but have not run here (no GPU was available): where they
fail or disagree, the probe falls back to the eager path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from mmtrace.models import attention

NAME = "mmtrace_shared_prefix"

Prefix = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]
Same = tuple[torch.Tensor, torch.Tensor]  # (keep, inv): rows computed, and each row's among them


class _State:
    """What the registered attention function reads: the shared prefix per attention module."""

    def __init__(self) -> None:
        self.kv: Prefix = {}
        self.calls = 0
        self.fused: bool | None = None  # None: choose per device and dtype (probed)
        # The last layer's attention: only its last query is computed (see `shared_prefix`).
        self.last: nn.Module | None = None
        # Rows whose queries after the first position are another row's (see `shared_prefix`).
        self.same: dict[nn.Module, Same] = {}


_STATE = _State()
_PROBED: dict[tuple[str, torch.dtype], bool] = {}
Fused = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _cpu_flash(q, k, v, causal: bool, scale: float):
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q, k, v, 0.0, causal, scale=scale
    )
    return out, lse


def _cuda_flash(q, k, v, causal: bool, scale: float):
    res = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, scale=scale)
    return res[0], res[1]


def _cuda_efficient(q, k, v, causal: bool, scale: float):
    res = torch.ops.aten._scaled_dot_product_efficient_attention(
        q, k, v, None, True, 0.0, causal, scale=scale
    )
    return res[0], res[1][..., : q.shape[2]]  # the log-sum-exp may be padded along q


def _kernel(device: torch.device, dtype: torch.dtype) -> Fused | None:
    if device.type == "cpu":
        return _cpu_flash
    if device.type == "cuda":
        return _cuda_flash if dtype in (torch.float16, torch.bfloat16) else _cuda_efficient
    return None


def _future(q: int, g: int, device) -> torch.Tensor:
    """The causal mask of g query groups of q positions each over q keys: [g*q, q]."""
    return torch.ones(q, q, dtype=torch.bool, device=device).triu(1).repeat(g, 1)


def _prefix_part(
    kernel: Fused, query, pk, pv, scaling: float, same: Same | None, own: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every row's queries against the shared prefix in one kernel call: out [b, q, H, d] and
    lse [b, q, H].

    The rows are folded into the query length as (row, position, group) under each KV head;
    for transformers' query layout ([b, q, H, d] in memory) and no grouping that is a view, and
    so are the kernel's outputs read back. With `same` = (keep, inv), the queries after the
    first `own` positions are computed for the rows `keep` only and row r reads those of
    keep[inv[r]]: the caller knows them to be equal."""
    b, h, q, d = query.shape
    hkv = pk.shape[1]
    g = h // hkv
    rows = query.transpose(1, 2)  # [b, q, H, d]
    if same is None:
        flat = rows.reshape(b * q, h, d)
    else:
        keep, inv = same
        flat = torch.cat([rows[:, :own].reshape(-1, h, d), rows[keep, own:].reshape(-1, h, d)])
    n = flat.shape[0]
    qf = flat.view(n, hkv, g, d).permute(1, 0, 2, 3).reshape(1, hkv, n * g, d)
    out, lse = kernel(qf, pk, pv, False, scaling)  # [1, Hkv, n*g, d], [1, Hkv, n*g]
    out = out[0].view(hkv, n, g, d).permute(1, 0, 2, 3).reshape(n, h, d)
    lse = lse[0].view(hkv, n, g).permute(1, 0, 2).reshape(n, h)
    if same is None:
        return out.view(b, q, h, d), lse.view(b, q, h)
    k = b * own
    shared_out = out[k:].view(len(keep), q - own, h, d).index_select(0, inv)
    shared_lse = lse[k:].view(len(keep), q - own, h).index_select(0, inv)
    return (
        torch.cat([out[:k].view(b, own, h, d), shared_out], 1),
        torch.cat([lse[:k].view(b, own, h), shared_lse], 1),
    )


def _split_fused(
    kernel: Fused,
    query,
    key,
    value,
    pk,
    pv,
    scaling: float,
    causal: bool = True,
    same: Same | None = None,
    own: int = 1,
) -> torch.Tensor:
    """Both parts through the fused kernel, merged by their log-sum-exps: [b, q, H, d] (the
    prefix part as in `_prefix_part`)."""
    b, h, q, d = query.shape
    hkv, t = key.shape[1], pk.shape[2]
    g = h // hkv
    if g > 1:
        key = key.repeat_interleave(g, dim=1)
        value = value.repeat_interleave(g, dim=1)
    out, lse = kernel(query, key, value, causal, scaling)  # [b, H, q, d], [b, H, q]
    out, lse = out.transpose(1, 2), lse.transpose(1, 2)  # [b, q, H, d], [b, q, H]
    if not t:
        return out
    out_p, lse_p = _prefix_part(kernel, query, pk, pv, scaling, same, own)
    # softmax over the union of keys: the prefix part weighs exp(lse_p) / (exp(lse_p) + exp(lse))
    w_p = torch.sigmoid(lse_p.float() - lse.float()).unsqueeze(-1)
    return torch.lerp(out.float(), out_p.float(), w_p).to(query.dtype)


def _outside_window(q: int, k: int, s: int, causal: bool, window: int, g: int, device):
    """Masks of the keys beyond a sliding window, for the eager path: [g*q, s] over the
    prefix and [g*q, k] over the suffix (True: blocked). The suffix's keys sit at s.., its
    queries too, or (not `causal`: the last query only) at s + k - 1; a key is seen from a
    query at distance < window."""
    at = s + (torch.arange(q, device=device) if causal else torch.full((1,), k - 1, device=device))
    prefix = (at[:, None] - torch.arange(s, device=device)[None, :]) >= window
    suffix = (at[:, None] - (s + torch.arange(k, device=device))[None, :]) >= window
    return prefix.repeat(g, 1), suffix.repeat(g, 1)


def _split_eager(
    query, key, value, pk, pv, scaling: float, causal: bool = True, window: int | None = None
) -> torch.Tensor:
    b, h, q, d = query.shape
    hkv, s = key.shape[1], pk.shape[2]
    g = h // hkv
    far = (
        None
        if window is None
        else _outside_window(q, key.shape[2], s, causal, window, g, query.device)
    )
    # Heads sharing a KV head are laid out as [Hkv, b, g*q, d], so the prefix product is one
    # batched matmul per KV head over all rows at once.
    qh = query.unflatten(1, (hkv, g)).transpose(0, 1).contiguous().view(hkv, b, g * q, d)
    qh = qh * scaling
    scores_s = torch.matmul(qh, key.transpose(0, 1).transpose(2, 3)).float()  # [Hkv, b, g*q, q]
    if causal:
        scores_s.masked_fill_(_future(q, g, query.device), float("-inf"))
    if far is not None:
        scores_s.masked_fill_(far[1], float("-inf"))
    top = scores_s.amax(-1, keepdim=True)
    if s:
        scores_p = torch.matmul(qh.view(hkv, b * g * q, d), pk[0].transpose(1, 2)).float()
        scores_p = scores_p.view(hkv, b, g * q, s)
        if far is not None:
            scores_p.masked_fill_(far[0], float("-inf"))
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
    return out.view(hkv, b, g, q, d).permute(1, 3, 0, 2, 4)


def _probe(kernel: Fused, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether `kernel` runs here and matches the eager path on a small GQA problem."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device, dtype)

    q, k, v, pk, pv = (
        rand(3, 4, 5, 16),
        rand(3, 2, 5, 16),
        rand(3, 2, 5, 16),
        *(rand(1, 2, 7, 16) for _ in range(2)),
    )
    try:
        fused = _split_fused(kernel, q, k, v, pk, pv, 0.25).float()
    except (RuntimeError, NotImplementedError, TypeError, IndexError):
        return False
    eager = _split_eager(q, k, v, pk, pv, 0.25).reshape(fused.shape).float()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    return bool(torch.allclose(fused, eager, atol=tol, rtol=tol))


def fused_kernel(device: torch.device, dtype: torch.dtype) -> Fused | None:
    """The fused kernel used on `device` and `dtype`, or None where the eager path is used."""
    kernel = _kernel(device, dtype)
    if kernel is None:
        return None
    key = (str(device), dtype)
    if key not in _PROBED:
        _PROBED[key] = _probe(kernel, device, dtype)
    return kernel if _PROBED[key] else None


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
    prefix is [1, Hkv, t, d]. Returns [b, q, H, d] like transformers' eager attention."""
    for unsupported in ("softcap", "s_aux"):
        if kwargs.get(unsupported) is not None:
            raise NotImplementedError(f"shared-prefix attention does not support {unsupported}")
    if dropout and module.training:
        raise NotImplementedError("tracing runs in eval mode")
    pk, pv = _STATE.kv[module]
    _STATE.calls += 1
    b, h, q, d = query.shape
    last_only = module is _STATE.last and q > 1
    if last_only:  # the last query attends to every key, so no causal mask
        query = query[:, :, -1:]
    kernel = fused_kernel(query.device, query.dtype) if _STATE.fused is not False else None
    # A sliding window that reaches no key (the last query is within it of key 0) changes
    # nothing; one that does needs the eager path, which masks the keys beyond it.
    window = kwargs.get("sliding_window")
    window = window if window is not None and pk.shape[2] + key.shape[2] > window else None
    if window is not None:
        kernel = None
    if kernel is not None:
        # The rows' own queries: the first position (t) unless only the last query is computed.
        same, own = (_STATE.same.get(module), 0 if last_only else 1) if q > 1 else (None, 1)
        out = _split_fused(kernel, query, key, value, pk, pv, scaling, not last_only, same, own)
    else:
        out = _split_eager(query, key, value, pk, pv, scaling, not last_only, window)
        out = out.reshape(b, -1, h, d)
    if last_only:
        out = torch.cat([out.new_zeros(b, q - 1, h, d), out], dim=1)
    return out, None


def _no_mask(*_args, **_kwargs) -> None:
    """The shared-prefix attention builds its own causal mask (inputs are single, unpadded)."""
    return None


attention.register(NAME, _shared_prefix_attention, _no_mask)


@contextmanager
def shared_prefix(decoder: nn.Module, kv: Prefix, fused: bool | None = None) -> Iterator[_State]:
    """Route the text model's attention through the shared-prefix attention with prefix `kv`
    (per attention module; updated in place by the caller between forward passes). `fused`:
    None uses a fused kernel where one is available and probed, False never does.

    The caller may set the yielded state's `last` to an attention module whose queries other
    than the last are never read (the last decoder layer's, when only the last position goes
    to the LM head): there only the last query is computed and the others are zeros. It may
    also set `same[module]` = (keep, inv) where it knows that every row r's queries after its
    first position (t) equal those of row keep[inv[r]]: the fused path then attends only the
    rows `keep` to the prefix at those positions and copies their results (the queries at t,
    and the part over the row's own keys, are always the row's)."""
    _STATE.kv, _STATE.calls, _STATE.fused, _STATE.last, _STATE.same = kv, 0, fused, None, {}
    try:
        with attention.attention_implementation(decoder, NAME):
            yield _STATE
    finally:
        _STATE.kv, _STATE.fused, _STATE.last, _STATE.same = {}, None, None, {}
