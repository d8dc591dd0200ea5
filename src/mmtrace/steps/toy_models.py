"""rules/toy_models.smk: the toy models, trained the way the real ones were (see
mmtrace.models.train): tokenizer -> vision tower -> text models -> MLLMs."""

from __future__ import annotations

from pathlib import Path

from mmtrace import config
from mmtrace.dataset import load_questions


def train_tokenizer(
    *, csvs: list[Path], world: Path, settings: dict, prompts: dict, tokenizer: Path
) -> None:
    """A byte-level BPE tokenizer over the questions, facts and prompts (written beside
    `tokenizer`, tokenizer.json)."""
    from mmtrace.models import train

    entities = [e for e in train.load_entities(world) if not e["held_out"]]
    train.train_tokenizer(
        load_questions(csvs),
        entities,
        config.Prompts(**prompts),
        config.TokenizerCfg(**settings).vocab_size,
        tokenizer.parent,
    )


def train_vision(*, settings: dict, image_size: int, seed: int, threads: int, vision: Path) -> None:
    """The toy CLIP vision tower, pre-trained on attribute recognition."""
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_vision(config.VisionCfg(**settings), image_size, seed, vision.parent)


def train_text_model(
    *,
    name: str,
    csvs: list[Path],
    tokenizer: Path,
    settings: dict,
    prompts: dict,
    seed: int,
    threads: int,
    checkpoint: Path,
) -> None:
    """A toy language model trained on the textual facts (the Vicuna / Phi-2 stand-in)."""
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_text_model(
        config.TextModelCfg(**settings),
        load_questions(csvs),
        config.Prompts(**prompts).llm,
        tokenizer.parent,
        seed,
        name,
        checkpoint.parent,
    )


def train_mllm(
    *,
    name: str,
    csvs: list[Path],
    world: Path,
    vision: Path,
    text_model: Path,
    settings: dict,
    prompts: dict,
    seed: int,
    threads: int,
    checkpoint: Path,
) -> None:
    """A toy LLaVA: the frozen vision tower, a projector and a trained text model."""
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    train.train_mllm(
        config.MLLMCfg(**settings),
        load_questions(csvs),
        train.load_entities(world),
        config.Prompts(**prompts),
        world.parent,
        vision.parent,
        text_model.parent,
        seed,
        name,
        checkpoint.parent,
    )
