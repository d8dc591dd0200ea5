"""The planted world: the toy world's questions with images whose identifying content sits only in
a fixed subset of visual tokens, for the controls whose mechanism is known.

Every image of the planted world is a natural rendering of a *different*, randomly drawn entity
(a distractor: it names nothing the question asks about), with its bottom row of patches
replaced by a *code strip*: one code tile per patch, the same tile repeated, drawing the asked
entity's attributes as black bars on white. A tile has one band of rows per attribute (shape,
colour, background) and a bar in column 1 + (the attribute value's index) of its band:

    row 0        white
    rows 1-3     a bar at column 1 + shape index        (10 shapes)
    row 4        white
    rows 5-7     a bar at column 1 + colour index       (10 colours)
    row 8        white
    rows 9-11    a bar at column 1 + background index   (6 backgrounds)

So the entity is identified by the bottom row of visual tokens and by nothing else: the tokens of
a "late" patch row carry the image's information, like the paper's finding that a small subset
of late visual tokens does (Fig. 5). The compiled control (`mmtrace.models.compiled`) reads the
tiles with hand-set weights; a model trained on these images must learn to read them. The
questions, answers and splits are the toy world's, unchanged.
"""

from __future__ import annotations

import csv
import logging
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from mmtrace.io import atomic_save, read_json, write_json
from mmtrace.logs import progress
from mmtrace.seeding import derive
from mmtrace.toyworld.generate import HARD_SPLIT
from mmtrace.toyworld.images import mask_path, render
from mmtrace.toyworld.vocab import BACKGROUNDS, COLORS, SHAPES

log = logging.getLogger(__name__)

# attribute -> (first row of its band, the values in column order)
BANDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "shape": (1, tuple(SHAPES)),
    "color": (5, tuple(COLORS)),
    "background": (9, tuple(BACKGROUNDS)),
}
BAND_ROWS = 3
MIN_PATCH = 12  # 3 bands of 3 rows with white rows between; 10 columns plus margins


def code_tile(attrs: dict[str, str], patch: int) -> np.ndarray:
    """[patch, patch, 3] uint8: the code tile of an entity's attributes."""
    if patch < MIN_PATCH:
        raise ValueError(f"the planted code needs patches of at least {MIN_PATCH} pixels")
    tile = np.full((patch, patch, 3), 255, dtype=np.uint8)
    for attr, (row, values) in BANDS.items():
        col = 1 + values.index(attrs[attr])
        tile[row : row + BAND_ROWS, col] = 0
    return tile


def planted_tokens(image_size: int, patch: int) -> list[int]:
    """Indices (among the visual tokens, row-major) of the patches the code strip covers."""
    per_row = image_size // patch
    return list(range(per_row * (per_row - 1), per_row * per_row))


def render_planted(
    attrs: dict[str, str], distractor: dict[str, str], seed: int, size: int, patch: int
) -> Image.Image:
    """A natural rendering of `distractor` with the bottom patch row replaced by `attrs`' code."""
    if size % patch:
        raise ValueError(f"the patch size ({patch}) must divide the image size ({size})")
    img = np.asarray(render(distractor, seed, size)).copy()
    tile = code_tile(attrs, patch)
    for x in range(0, size, patch):
        img[size - patch :, x : x + patch] = tile
    return Image.fromarray(img)


def _distractor(entities: list[dict], own: str, seed: int, key: str) -> dict[str, str]:
    rng = random.Random(derive(seed, "distractor", key))
    while True:
        e = rng.choice(entities)
        if e["id"] != own:
            return e["attrs"]


def generate_planted(world_dir: Path, out_dir: Path, seed: int, patch: int) -> dict[str, int]:
    """Write the planted world beside the toy world: the same CSVs (but the hard split's) and
    world.json, every image (evaluation and training renderings) redrawn as `render_planted`;
    returns images per split."""
    world = read_json(world_dir / "world.json")
    size = int(world["image_size"])
    entities = world["entities"]
    attrs = {e["id"]: e["attrs"] for e in entities}
    jobs: list[tuple[str, str, str]] = []  # (image path, entity id, key)
    counts: dict[str, int] = {}
    # not the hard split: F3b/F4's evaluation set, which the planted controls do not answer
    for split_csv in sorted(p for p in world_dir.glob("*.csv") if p.stem != HARD_SPLIT):
        with open(split_csv, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        counts[split_csv.stem] = len(rows)
        jobs += [(r["image_url"], r["entity_id"], r["qid"]) for r in rows]
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(split_csv, out_dir / split_csv.name)
    for e in entities:
        jobs += [(p, e["id"], p) for p in e["train_images"]]
    strip = Image.new("L", (size, size), 0)
    strip.paste(255, (0, size - patch, size, size))
    for path, entity, key in progress(jobs, desc="planted images", unit="img"):
        image = render_planted(
            attrs[entity],
            _distractor(entities, entity, seed, key),
            derive(seed, "planted", key),
            size,
            patch,
        )
        dest = out_dir / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(dest, lambda tmp, im=image: im.save(tmp, format="PNG"))
        if path.startswith("images/eval/"):  # the entity's pixels: the code strip, nothing else
            atomic_save(mask_path(dest), lambda tmp: strip.save(tmp, format="PNG"))
    write_json(out_dir / "world.json", {**world, "planted": {"patch": patch, "seed": seed}})
    log.info("planted world written to %s: %s", out_dir, counts)
    return counts
