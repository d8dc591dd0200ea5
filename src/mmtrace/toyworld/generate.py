"""Write the toy world to disk: world.json, one CSV per split, and the rendered images.

Besides the paper's splits it can write the `hard` split (`hard_questions`): copies of the
analysed splits' questions shown on hard renderings, the evaluation set of F3b/F4 only
(docs/method.md §5), on which the toy MLLMs make enough errors for the correct-vs-incorrect
comparisons to have power.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
from pathlib import Path
from typing import Any

from mmtrace.dataset import write_split
from mmtrace.io import atomic_save, write_json
from mmtrace.logs import progress
from mmtrace.seeding import derive
from mmtrace.toyworld.images import mask_path, render_hard, render_with_mask
from mmtrace.toyworld.world import FAMILIES, Entity, Question, build_world

log = logging.getLogger(__name__)

SPLITS = ("known", "movies", "okvqa", "heldout")
# The F3b/F4 evaluation set: the analysed splits' questions (FAMILIES) on hard renderings.
HARD_SPLIT = "hard"


def train_image_path(entity_id: str, k: int) -> str:
    return f"images/train/{entity_id}/{k}.png"


def eval_image_path(qid: str) -> str:
    return f"images/eval/{qid}.png"


def hard_image_path(qid: str) -> str:
    return f"images/{HARD_SPLIT}/{qid}.png"


def hard_questions(questions: list[Question], n: int, seed: int) -> list[Question]:
    """`n` copies of the analysed splits' questions (single- and multi-constraint, trained
    entities only: F3b/F4 read every question an MLLM answers) for the hard split, in a seeded
    order; past the pool's size the order repeats, each copy with its own rendering. A copy's
    id is `hard-<qid>-<round>`, unique and traceable to the question it copies."""
    pool = [q for q in questions if q.split in FAMILIES and not q.held_out]
    if n and not pool:
        raise ValueError("the hard split needs questions of the analysed splits to copy")
    order = random.Random(derive(seed, HARD_SPLIT)).sample(pool, len(pool))
    out = []
    for i in range(n):
        src = order[i % len(order)]
        qid = f"{HARD_SPLIT}-{src.qid}-{i // len(order)}"
        out.append(dataclasses.replace(src, qid=qid, split=HARD_SPLIT, image=hard_image_path(qid)))
    return out


def write_hard_split(
    out: Path,
    questions: list[Question],
    entities: dict[str, Entity],
    seed: int,
    image_size: int,
    noise: float,
    occlusion: float,
) -> int:
    """Render the hard split's images (`render_hard`, seeded per question) and write its CSV;
    returns its question count. No object masks: the hard split feeds no ablation."""
    for q in progress(questions, desc="rendering hard images", unit="img"):
        path = out / q.image
        path.parent.mkdir(parents=True, exist_ok=True)
        image = render_hard(
            entities[q.entity_id].attrs,
            derive(seed, HARD_SPLIT, q.qid),
            image_size,
            noise=noise,
            occlusion=occlusion,
        )
        atomic_save(path, lambda tmp, im=image: im.save(tmp, format="PNG"))
    _write_records(out / f"{HARD_SPLIT}.csv", HARD_SPLIT, questions)
    return len(questions)


def _write_records(path: Path, split: str, questions: list[Question]) -> None:
    recs = []
    for q in questions:
        d = q.to_dict()
        d["image_url"] = d.pop("image")
        recs.append(d)
    write_split(path, split, recs)


def generate(
    out_dir: str | Path,
    seed: int,
    n_known: int,
    n_movies: int,
    n_okvqa: int,
    n_heldout: int,
    image_size: int,
    train_images_per_entity: int,
    hard: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Generate everything under `out_dir`; returns question counts per split. `hard` (the
    `toy_world.hard` settings: n, noise, occlusion) adds the hard split when its n > 0."""
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
        _write_records(out / f"{split}.csv", split, grouped.get(split, []))
        counts[split] = len(grouped.get(split, []))
        log.info("wrote %d %s questions", counts[split], split)
    if hard and hard["n"]:
        settings = {k: hard[k] for k in ("noise", "occlusion")}
        chosen = hard_questions(questions, hard["n"], seed)
        counts[HARD_SPLIT] = write_hard_split(out, chosen, by_id, seed, image_size, **settings)
        log.info("wrote %d %s questions (%s)", counts[HARD_SPLIT], HARD_SPLIT, settings)
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
