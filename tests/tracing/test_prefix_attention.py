"""The shared-prefix attention with a sliding window: a batch of suffix rows over one shared
prefix equals plain attention over the concatenated keys with the window's mask (keys at distance
< window), for every query and for the last query alone; a window that reaches no key changes
nothing."""

from __future__ import annotations

import pytest
import torch

from mmtrace.tracing import prefix_attention as pa


def _plain(query, key, value, pk, pv, scaling, window, last_only):
    """[b, q, H, d]: softmax over prefix + own keys, causal and windowed, by explicit masks."""
    b, h, q, d = query.shape
    g = h // key.shape[1]
    keys = torch.cat([pk.expand(b, -1, -1, -1), key], 2).repeat_interleave(g, 1)
    values = torch.cat([pv.expand(b, -1, -1, -1), value], 2).repeat_interleave(g, 1)
    s = pk.shape[2]
    at = s + torch.arange(key.shape[2])
    qs = at[-1:] if last_only else at
    ks = torch.arange(s + key.shape[2])
    ok = ks[None, :] <= qs[:, None]
    if window is not None:
        ok &= (qs[:, None] - ks[None, :]) < window
    scores = (query @ keys.transpose(-1, -2)) * scaling
    scores = scores.masked_fill(~ok, float("-inf"))
    return (scores.softmax(-1) @ values).transpose(1, 2)


@pytest.mark.parametrize("last_only", [False, True])
@pytest.mark.parametrize("window", [3, 6, 100])
def test_windowed_eager_equals_plain_attention(window, last_only):
    gen = torch.Generator().manual_seed(0)
    b, h, hkv, q, s, d = 3, 4, 2, 5, 7, 8
    query, key, value = (torch.randn(b, n, q, d, generator=gen) for n in (h, hkv, hkv))
    pk, pv = (torch.randn(1, hkv, s, d, generator=gen) for _ in range(2))
    qq = query[:, :, -1:] if last_only else query
    bound = window if s + q > window else None  # as the attention function decides
    got = pa._split_eager(qq, key, value, pk, pv, 0.3, not last_only, bound)
    got = got.reshape(b, -1, h, d)
    want = _plain(qq, key, value, pk, pv, 0.3, window, last_only)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    if window < s + q:  # the window binds: without it the result differs
        free = pa._split_eager(qq, key, value, pk, pv, 0.3, not last_only).reshape(b, -1, h, d)
        assert (free - want).abs().max() > 1e-3
