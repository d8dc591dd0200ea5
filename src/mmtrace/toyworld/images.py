"""Procedural entity images.

An entity is shown as a shape of a colour on a patterned background. Every rendering draws a fresh
position, size, rotation, colour jitter and pixel noise from its own seed, so a model has to
recognise the attributes rather than memorise pixels; held-out renderings use seeds never used in
training.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmtrace.toyworld.vocab import COLORS

BG_TINT = (235, 232, 225)
BG_INK = (150, 150, 160)
# the pixel noise's standard deviation of the training and evaluation renderings
NOISE_SD = 6.0


def _polygon(cx: float, cy: float, r: float, n: int, rot: float, inner: float | None = None):
    pts = []
    steps = n * 2 if inner is not None else n
    for i in range(steps):
        rad = r if inner is None or i % 2 == 0 else r * inner
        a = rot + 2 * math.pi * i / steps
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _rotated_rect(cx: float, cy: float, hw: float, hh: float, rot: float):
    c, s = math.cos(rot), math.sin(rot)
    return [
        (cx + x * c - y * s, cy + x * s + y * c)
        for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
    ]


def _background(draw: ImageDraw.ImageDraw, kind: str, size: int, rng: random.Random) -> None:
    step = rng.randint(5, 7)
    off = rng.randint(0, step - 1)
    if kind == "plain":
        return
    if kind == "hstripes":
        for y in range(off, size, step):
            draw.rectangle([0, y, size, y + 1], fill=BG_INK)
    elif kind == "vstripes":
        for x in range(off, size, step):
            draw.rectangle([x, 0, x + 1, size], fill=BG_INK)
    elif kind == "dots":
        for y in range(off, size, step):
            for x in range(off, size, step):
                draw.ellipse([x, y, x + 1.6, y + 1.6], fill=BG_INK)
    elif kind == "checker":
        for y in range(-step, size, step):
            for x in range(-step, size, step):
                if ((x + y) // step) % 2 == 0:
                    draw.rectangle(
                        [x + off, y + off, x + off + step - 1, y + off + step - 1],
                        fill=(200, 200, 206),
                    )
    elif kind == "diagonal":
        for k in range(-size, size, step):
            draw.line([(k + off, 0), (k + off + size, size)], fill=BG_INK, width=1)
    else:
        raise ValueError(f"unknown background {kind!r}")


def _shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    rot: float,
    color: tuple[int, int, int] | int,
    erase: tuple[int, int, int] | int = BG_TINT,
) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(2, int(r / 3)))
    elif shape == "square":
        draw.polygon(_rotated_rect(cx, cy, r * 0.95, r * 0.95, rot), fill=color)
    elif shape == "diamond":
        pts = [(cx, cy - r * 1.2), (cx + r * 0.75, cy), (cx, cy + r * 1.2), (cx - r * 0.75, cy)]
        draw.polygon(pts, fill=color)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r * 1.15, 3, rot - math.pi / 2), fill=color)
    elif shape == "bar":
        draw.polygon(_rotated_rect(cx, cy, r * 1.3, r * 0.45, rot), fill=color)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, r * 1.2, 5, rot - math.pi / 2, inner=0.45), fill=color)
    elif shape == "cross":
        w = r * 0.38
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)
    elif shape == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
        d = r * 0.55
        draw.pieslice([cx - r + d, cy - r, cx + r + d, cy + r], 0, 360, fill=erase)
    elif shape == "arrow":
        pts = [
            (cx - r, cy - r * 0.3),
            (cx + r * 0.1, cy - r * 0.3),
            (cx + r * 0.1, cy - r * 0.8),
            (cx + r, cy),
            (cx + r * 0.1, cy + r * 0.8),
            (cx + r * 0.1, cy + r * 0.3),
            (cx - r, cy + r * 0.3),
        ]
        c, s = math.cos(rot), math.sin(rot)
        draw.polygon(
            [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts],
            fill=color,
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render(attrs: dict[str, str], seed: int, size: int = 48) -> Image.Image:
    """Draw one rendering of an entity; the same (attrs, seed, size) gives the same pixels."""
    return render_with_mask(attrs, seed, size)[0]


def render_with_mask(
    attrs: dict[str, str],
    seed: int,
    size: int = 48,
    noise: float = NOISE_SD,
    occlusion: float = 0.0,
) -> tuple[Image.Image, Image.Image]:
    """A rendering and its object mask ("L", 255 where the shape is drawn): the renderer's
    ground truth of where the entity's shape and colour are, a baseline for ranking visual
    tokens by content rather than by Eq. 1 (the background, the third attribute, is everywhere
    else).

    `noise` is the pixel noise's standard deviation and `occlusion` the side of a grey box drawn
    over the object, as a share of its diameter (0: none); the defaults are the training and
    evaluation renderings, whose pixels do not change with these options. Larger values make the
    hard renderings (`render_hard`). The mask stays the unoccluded shape's."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), BG_TINT)
    draw = ImageDraw.Draw(img)
    _background(draw, attrs["background"], size, rng)
    base = COLORS[attrs["color"]]
    color = tuple(int(min(255, max(0, c + rng.randint(-18, 18)))) for c in base)
    r = size * rng.uniform(0.22, 0.3)
    cx = size / 2 + rng.uniform(-0.12, 0.12) * size
    cy = size / 2 + rng.uniform(-0.12, 0.12) * size
    rot = rng.uniform(-0.25, 0.25)
    _shape(draw, attrs["shape"], cx, cy, r, rot, color)
    mask = Image.new("L", (size, size), 0)
    _shape(ImageDraw.Draw(mask), attrs["shape"], cx, cy, r, rot, 255, erase=0)
    if occlusion > 0:
        _occlude(draw, cx, cy, r, occlusion, rng)
    arr = np.asarray(img, dtype=np.float32)
    pixels = np.random.default_rng(seed).normal(0.0, noise, size=arr.shape)
    return Image.fromarray(np.clip(arr + pixels, 0, 255).astype(np.uint8)), mask


def _occlude(
    draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, share: float, rng: random.Random
) -> None:
    """A grey box of side `share` x the object's diameter, centred within the object's radius
    of its centre (so it covers part of the shape, not the background only)."""
    half = share * r
    ox = cx + rng.uniform(-0.5, 0.5) * r
    oy = cy + rng.uniform(-0.5, 0.5) * r
    grey = rng.randint(90, 200)
    draw.rectangle([ox - half, oy - half, ox + half, oy + half], fill=(grey, grey, grey))


def render_hard(
    attrs: dict[str, str], seed: int, size: int, noise: float, occlusion: float
) -> Image.Image:
    """A hard rendering of an entity (heavier pixel noise and an occluding box), for the
    evaluation set behind F3b/F4 only (docs/method.md §5): on the ordinary renderings the toy
    MLLMs make too few errors for the correct-vs-incorrect comparisons (Figs. 15-17) to have
    power. Deterministic in (attrs, seed, size, noise, occlusion)."""
    return render_with_mask(attrs, seed, size, noise=noise, occlusion=occlusion)[0]


def mask_path(image: Path) -> Path:
    """Where an image's object mask is stored: beside it, `<name>.mask.png`."""
    return image.with_name(f"{image.stem}.mask.png")


def patch_coverage(image: Path, side: int) -> np.ndarray | None:
    """[side * side] float64, row-major like CLIP's patches: the share of each patch's pixels
    the object covers, from the mask beside `image`; None where there is no mask (real data)."""
    path = mask_path(image)
    if not path.exists():
        return None
    m = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
    h, w = m.shape
    if h % side or w % side:
        raise ValueError(f"{path}: a {w}x{h} mask does not split into {side}x{side} patches")
    return m.reshape(side, h // side, side, w // side).mean(axis=(1, 3)).reshape(-1)
