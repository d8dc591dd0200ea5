"""Shared fixtures: a tiny toy world, and every toy model trained on it for a few steps, made
once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmtrace.config import MLLMCfg, Prompts, TextModelCfg, VisionCfg
from mmtrace.dataset import load_questions
from mmtrace.models import train
from mmtrace.toyworld.generate import generate


def pytest_configure(config):
    """One torch thread per test process (and per workflow the tests start, through the
    environment), unless OMP_NUM_THREADS says otherwise: the tiny models gain nothing from
    threads, and on a machine whose cores are busy, spinning torch threads made the unit tests
    several times slower (tests/editing + tests/cli: 136 s with 2 threads, 19 s with 1)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


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


SPLITS = ("known", "movies", "okvqa")
TINY_TEXT = dict(
    hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, steps=3, batch_size=8, warmup=1
)


@pytest.fixture(scope="session")
def trained(tiny_world, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("models")
    records = load_questions([tiny_world / f"{s}.csv" for s in SPLITS])
    entities = train.load_entities(tiny_world / "world.json")
    prompts = Prompts()
    train.train_tokenizer(
        records, [e for e in entities if not e["held_out"]], prompts, 600, out / "tok"
    )
    train.train_vision(
        VisionCfg(
            hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, steps=3, batch_size=8
        ),
        48,
        0,
        out / "vision",
    )
    dirs = {"vision": out / "vision", "tok": out / "tok"}
    for arch in ("llama", "phi"):
        cfg = TextModelCfg(arch=arch, num_kv_heads=1 if arch == "llama" else None, **TINY_TEXT)
        train.train_text_model(cfg, records, prompts.llm, out / "tok", 0, arch, out / arch)
        mcfg = MLLMCfg(text_model=arch, projector_steps=2, finetune_steps=2, batch_size=4, warmup=1)
        train.train_mllm(
            mcfg,
            records,
            entities,
            prompts,
            tiny_world,
            out / "vision",
            out / arch,
            0,
            f"mm-{arch}",
            out / f"mm-{arch}",
        )
        dirs[arch] = out / arch
        dirs[f"mm-{arch}"] = out / f"mm-{arch}"
    return dirs


@pytest.fixture(scope="session")
def planted(tiny_world, tmp_path_factory) -> Path:
    """The tiny world's planted rendering (the entity's code only in the bottom patch row)."""
    from mmtrace.toyworld.planted import generate_planted

    out = tmp_path_factory.mktemp("planted")
    generate_planted(tiny_world, out, seed=3, patch=12)
    return out


@pytest.fixture(scope="session")
def compiled(planted, trained, tmp_path_factory):
    """The compiled positive control on the planted tiny world: (loaded, ground truth, records,
    entities). Its effects are large by construction (p(answer) > 0.99)."""
    import json

    from mmtrace.models.compiled import compile_llava
    from mmtrace.models.loading import load

    splits = ("known", "movies", "okvqa", "heldout")
    records = load_questions([planted / f"{s}.csv" for s in splits])
    entities = json.loads((planted / "world.json").read_text())["entities"]
    out = tmp_path_factory.mktemp("compiled")
    truth = compile_llava(
        records, entities, trained["tok"], Prompts().mllm, 48, 12, seed=0, out_dir=out
    )
    return load(out, "mllm", name="compiled"), truth, records, entities
