"""Write the toy world to disk: world.json, one CSV per split, and the rendered images."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

from mmtrace.dataset import write_split
from mmtrace.io import atomic_save, write_json
from mmtrace.logs import progress
from mmtrace.seeding import derive
from mmtrace.toyworld.images import mask_path, render_with_mask
from mmtrace.toyworld.world import Entity, Question, build_world

log = logging.getLogger(__name__)

SPLITS = ("known", "movies", "okvqa", "heldout")


def train_image_path(entity_id: str, k: int) -> str:
    return f"images/train/{entity_id}/{k}.png"


def eval_image_path(qid: str) -> str:
    return f"images/eval/{qid}.png"


def generate(
    out_dir: str | Path,
    seed: int,
    n_known: int,
    n_movies: int,
    n_okvqa: int,
    n_heldout: int,
    image_size: int,
    train_images_per_entity: int,
) -> dict[str, int]:
    """Generate everything under `out_dir`; returns question counts per split."""
    out = Path(out_dir)
    entities, questions = build_world(seed, n_known, n_movies, n_okvqa, n_heldout)
    log.info("built %d entities and %d questions (seed %d)", len(entities), len(questions), seed)

    by_id: dict[str, Entity] = {e.id: e for e in entities}
    jobs: list[tuple[str, dict[str, str], int]] = []
    for ent in entities:
        for k in range(train_images_per_entity):
            jobs.append((train_image_path(ent.id, k), ent.attrs, derive(seed, "train", ent.id, k)))
    for q in questions:
        q.image = eval_image_path(q.qid)
        jobs.append((q.image, by_id[q.entity_id].attrs, derive(seed, "eval", q.qid)))
    for rel, attrs, img_seed in progress(jobs, desc="rendering images", unit="img"):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image, mask = render_with_mask(attrs, img_seed, image_size)
        atomic_save(path, lambda tmp, im=image: im.save(tmp, format="PNG"))
        if rel.startswith("images/eval/"):  # the analyses' images: their object masks too
            atomic_save(mask_path(path), lambda tmp, m=mask: m.save(tmp, format="PNG"))

    grouped: dict[str, list[Question]] = collections.defaultdict(list)
    for q in questions:
        grouped[q.split].append(q)
    counts = {}
    for split in SPLITS:
        recs = []
        for q in grouped.get(split, []):
            d = q.to_dict()
            d["image_url"] = d.pop("image")
            recs.append(d)
        write_split(out / f"{split}.csv", split, recs)
        counts[split] = len(recs)
        log.info("wrote %d %s questions", len(recs), split)
    write_json(
        out / "world.json",
        {
            "seed": seed,
            "image_size": image_size,
            "train_images_per_entity": train_images_per_entity,
            "entities": [
                {
                    **e.__dict__,
                    "train_images": [
                        train_image_path(e.id, k) for k in range(train_images_per_entity)
                    ],
                }
                for e in entities
            ],
        },
    )
    return counts
