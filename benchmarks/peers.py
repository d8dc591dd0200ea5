"""What a competent user would write instead of mmtrace's engine: batched activation patching with
plain PyTorch hooks and stock transformers, written to be fast.

- `batched`: 64 restorations per forward pass, each a batch row; the corrupted input embeddings
  (image features merged in) are computed once and expanded over the rows, so the vision tower
  runs once; logits at the last position only.
- `prefix_cached`: the same, but the positions before the first corrupted token are run once
  into transformers' `DynamicCache`, which is expanded over the rows of each batch; each batch
  then runs only the positions from the corruption on.

Both share one clean pass (every kind at every layer) and one corrupted pass over all kinds and
windows, skip the positions before the corruption (restoring them is a no-op, and
`prefix_cached` is built on that fact) and reach the model through hand-written module paths,
not mmtrace's lookup or hooks. Windows are `centered` (ROME's convention, the default).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from transformers import DynamicCache


def _out(o):
    return o[0] if isinstance(o, tuple) else o


def _swap(o, new):
    return (new, *o[1:]) if isinstance(o, tuple) else new


@torch.no_grad()
def trace(
    model, clean, corrupted, answer, kinds, windows, positions, first, cached, batch=64, limit=None
):
    """{(kind, window): IE [positions, layers]} by batched patching (`cached`: prefix-cached);
    with `limit`, only that many batches run and the other cells are NaN."""
    lm, head = model.model.language_model, model.lm_head
    layers = lm.layers
    n = len(layers)

    def site(kind, layer):
        return {"hidden": layers[layer], "mlp": layers[layer].mlp}.get(
            kind, layers[layer].self_attn
        )

    saved, hooks = {}, []
    for key in ((k, i) for k in kinds for i in range(n)):
        hook = lambda _m, _i, o, key=key: saved.__setitem__(key, _out(o)[0])  # noqa: E731
        hooks.append(site(*key).register_forward_hook(hook))
    model(**clean, logits_to_keep=1)
    for h in hooks:
        h.remove()
    emb = {}
    h = lm.register_forward_pre_hook(lambda _m, _a, kw: emb.update(kw), with_kwargs=True)
    p_corr = model(**corrupted, logits_to_keep=1).logits[0, -1].softmax(-1)[answer].item()
    h.remove()
    x, start = emb["inputs_embeds"], first if cached else 0
    if cached:
        prefix = lm(inputs_embeds=x[:, :first], use_cache=True).cache
    cells = [
        (k, w, i, j)
        for k in kinds
        for w in windows
        for i, t in enumerate(positions)
        if t >= first
        for j in range(n)
    ]
    ie = {
        (k, w): torch.zeros(len(positions), n, dtype=torch.float64) for k in kinds for w in windows
    }
    if limit is not None:
        for k, w, i, j in cells[limit * batch :]:
            ie[(k, w)][i, j] = float("nan")
    for c in range(0, len(cells[: None if limit is None else limit * batch]), batch):
        chunk = cells[c : c + batch]
        plan = defaultdict(lambda: ([], []))
        for row, (k, w, i, j) in enumerate(chunk):
            for layer in range(max(0, j - w // 2), min(n, j - w // 2 + w)):
                plan[(k, layer)][0].append(row)
                plan[(k, layer)][1].append(positions[i])

        def patch(key, rows, pos):
            def hook(_m, _i, o):
                hidden = _out(o).clone()
                hidden[rows, [p - start for p in pos]] = saved[key][pos]
                return _swap(o, hidden)

            return hook

        hooks = [site(*key).register_forward_hook(patch(key, *rp)) for key, rp in plan.items()]
        b, kwargs = len(chunk), {}
        if cached:
            kwargs["cache"] = cache = DynamicCache(config=lm.config)
            for i, layer in enumerate(prefix.layers):
                cache.update(
                    layer.keys.expand(b, -1, -1, -1), layer.values.expand(b, -1, -1, -1), i
                )
        hidden = lm(inputs_embeds=x[:, start:].expand(b, -1, -1), **kwargs).last_hidden_state
        for h in hooks:
            h.remove()
        probs = head(hidden[:, -1]).softmax(-1)[:, answer]
        for (k, w, i, j), p in zip(chunk, probs.tolist(), strict=True):
            ie[(k, w)][i, j] = p - p_corr
    return ie
