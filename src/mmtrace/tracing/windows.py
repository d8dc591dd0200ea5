"""Restoration windows: which layers a cell at layer l restores (both conventions of
docs/method.md §4.5)."""

from __future__ import annotations

WINDOW_STYLES = ("centered", "radius")


def window_layers(layer: int, window: int, n_layers: int, style: str) -> list[int]:
    """`centered` (ROME): `window` layers centred on `layer`; `radius` (the release): layers
    [layer - window, layer + window]. Both are clipped to the model's layers."""
    if window < 1 and style == "centered":
        raise ValueError("a centered window needs at least one layer")
    if style == "centered":
        lo = layer - window // 2
        hi = lo + window
    elif style == "radius":
        lo, hi = layer - window, layer + window + 1
    else:
        raise ValueError(f"window style must be one of {WINDOW_STYLES}, not {style!r}")
    return list(range(max(0, lo), min(n_layers, hi)))
