"""rules/world.smk: the embedded default data, the toy world."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config

log = logging.getLogger(__name__)


def toy_world(*, world: Path, seed: int, settings: dict) -> None:
    """Entities, drawn images, facts and constraint-annotated questions, written beside
    `world` (world.json): one CSV per split and the images folder."""
    from mmtrace.toyworld.generate import generate

    counts = generate(world.parent, seed=seed, **config.ToyWorld(**settings).model_dump())
    log.info("toy world written to %s: %s", world.parent, counts)


def planted_world(*, world: Path, seed: int, patch: int, planted: Path) -> None:
    """The planted world beside the toy world (`mmtrace.toyworld.planted`): the same questions,
    images whose identifying content is only in the bottom row of patches."""
    from mmtrace.toyworld.planted import generate_planted

    generate_planted(world.parent, planted.parent, seed, patch)
