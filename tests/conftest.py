"""Shared fixtures: a tiny toy world generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmtrace.toyworld.generate import generate

TINY = dict(
    n_known=20, n_movies=10, n_okvqa=15, n_heldout=4, image_size=48, train_images_per_entity=2
)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate(out, seed=7, **TINY)
    return out


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
