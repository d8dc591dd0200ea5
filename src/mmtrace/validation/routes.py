"""The planted cells of a causal trace: the (position, layer) cells whose restoration must bring
the answer back, given a ground truth's routes (`ground_truth.json`) and the trace's window."""

from __future__ import annotations

import numpy as np

from mmtrace.tracing.windows import window_layers


def route_positions(trace: dict) -> dict[str, list[int]]:
    """Row indices of the trace (`trace["positions"]` order) for each position role of a
    route: `constraint_last` (the visual constraint's last token, and any later repetition of
    that token, which the compiled model treats alike) and `last_token`."""
    positions = trace["positions"]
    vc = trace["constraint_positions"]["visual"][-1]
    vc_token = trace["tokens"][positions.index(vc)] if vc in positions else None
    constraint = [
        i
        for i, (p, t) in enumerate(zip(positions, trace["tokens"], strict=True))
        if p == vc or (t == vc_token and p > vc)
    ]
    return {"constraint_last": constraint, "last_token": [len(positions) - 1]}


def planted_mask(trace: dict, kind: str, routes: dict) -> np.ndarray:
    """[positions, layers] bool: cells whose restored window touches the route of `kind`."""
    n_layers = len(trace["layers"])
    mask = np.zeros((len(trace["positions"]), n_layers), dtype=bool)
    rows = route_positions(trace)
    for role, layers in routes[kind].items():
        for j, layer in enumerate(trace["layers"]):
            window = window_layers(layer, trace["window"], n_layers, trace["window_style"])
            if set(window) & set(layers):
                mask[rows[role], j] = True
    return mask


def cell_masks(trace: dict, cells: dict[str, list[list]]) -> tuple[np.ndarray, np.ndarray]:
    """([positions, layers] bool, same): the trace's cells a ground truth says must restore
    and must stay quiet (`ground_truth.json`'s `expected.windows[w][kind]`), by position role
    (`route_positions`, and `other` for every other traced position) and layer."""
    shape = (len(trace["positions"]), len(trace["layers"]))
    rows = route_positions(trace)
    taken = {r for rs in rows.values() for r in rs}
    rows["other"] = [i for i in range(shape[0]) if i not in taken]
    column = {layer: j for j, layer in enumerate(trace["layers"])}
    masks = []
    for which in ("restore", "quiet"):
        mask = np.zeros(shape, dtype=bool)
        for role, layer in cells.get(which, []):
            if layer in column:
                mask[rows[role], column[layer]] = True
        masks.append(mask)
    return masks[0], masks[1]
