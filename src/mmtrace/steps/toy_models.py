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


def train_vision(
    *, settings: dict, image_size: int, seed: int, threads: int, world: str, vision: Path
) -> None:
    """The toy CLIP vision tower, pre-trained on attribute recognition in the world's renderings
    (`world`: default | planted)."""
    import torch

    from mmtrace.models import train

    torch.set_num_threads(threads)
    cfg = config.VisionCfg(**settings)
    planted = world == "planted"
    if planted and cfg.planted_steps is not None:
        cfg = cfg.model_copy(update={"steps": cfg.planted_steps})
    train.train_vision(cfg, image_size, seed, vision.parent, planted=planted)


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


def compile_mllm(
    *,
    name: str,
    csvs: list[Path],
    world: Path,
    tokenizer: Path,
    prompts: dict,
    image_size: int,
    patch: int,
    seed: int,
    settings: dict,
    windows: list[int],
    window_style: str,
    truth: Path,
) -> None:
    """A compiled control (`mmtrace.models.compiled`, its variant from `settings`): hand-set
    weights, its ground truth written beside the checkpoint, with the trace cells that must and
    must not restore for each of `windows` (config `validation.windows`) in `window_style`."""
    from mmtrace.io import read_json
    from mmtrace.models.compiled import compile_llava

    compile_llava(
        load_questions(csvs),
        read_json(world)["entities"],
        tokenizer.parent,
        config.Prompts(**prompts).mllm,
        image_size,
        patch,
        seed,
        truth.parent,
        variant=config.CompiledCfg(**settings).variant,
        windows=windows,
        window_style=window_style,
    )


def randomize_mllm(*, name: str, source: Path, seed: int, checkpoint: Path) -> None:
    """A negative control: a toy MLLM's architecture with random weights."""
    from mmtrace.io import write_json
    from mmtrace.models.random import random_copy
    from mmtrace.seeding import derive

    info = random_copy(source.parent, derive(seed, "random", name), checkpoint.parent)
    write_json(checkpoint, {"model": name, **info})


def install_checkpoint(
    *,
    name: str,
    shipped: Path,
    manifest: Path,
    worlds: list[Path],
    wanted: dict,
    planted: bool,
    marker: Path,
) -> None:
    """A shipped checkpoint, verified (config, toy world, every file's checksum) and installed
    where the analyses load models (`mmtrace.models.shipped`)."""
    from mmtrace.models import shipped as ship

    info = ship.read_manifest(shipped)
    ship.check_config(info, wanted, shipped)
    labels = ["default", "planted"] if planted else ["default"]
    ship.check_world(info, {k: w.parent for k, w in zip(labels, worlds, strict=True)}, shipped)
    ship.install(shipped, name, marker.parent, info)


def train(
    *,
    markers: list[Path],
    shipped: Path,
    names: list,
    wanted: dict,
    roles: dict,
    worlds: dict,
    csvs: list[Path],
    prompts: dict,
    batch_size: int,
    threads: int,
    comparison: Path,
    markdown: Path,
) -> None:
    """The trained checkpoints against the shipped ones: byte-identical, or how far apart
    their recorded accuracies are and, for a text model or MLLM, its accuracy on the analysed
    splits of the world it learnt from, shipped vs retrained
    (results/retrained_vs_shipped.{json,md})."""
    import logging

    import torch

    from mmtrace.evaluate import score_questions, summarise
    from mmtrace.io import write_json, write_text
    from mmtrace.models import shipped as ship
    from mmtrace.models.loading import load

    torch.set_num_threads(threads)
    retrained = markers[0].parent.parent
    result = ship.compare(retrained, shipped, names)
    manifest = ship.read_manifest(shipped)
    result["config_differences"] = ship.differences(
        manifest["fingerprint"], {k: v for k, v in wanted.items() if k != "names"}
    )
    templates = config.Prompts(**prompts)
    for name, row in result["checkpoints"].items():
        logging.getLogger(__name__).info(
            "%s: %s", name, "byte-identical" if row["identical"] else row["differing_files"]
        )
        if row["identical"] or name not in roles:
            continue
        data = Path(worlds[name])
        records = load_questions([c for c in csvs if c.parent == data])
        acc = {}
        for label, folder in (("shipped", Path(shipped) / name), ("retrained", retrained / name)):
            loaded = load(folder, roles[name], name=name)
            rows = score_questions(loaded, records, templates, data, batch_size)
            acc[label] = {s: v["accuracy"] for s, v in summarise(rows).items()}
        row["numbers"] |= {
            f"evaluation/{split}": {
                "shipped": acc["shipped"][split],
                "retrained": acc["retrained"][split],
                "difference": round(acc["retrained"][split] - acc["shipped"][split], 6),
            }
            for split in acc["shipped"]
        }
    write_json(comparison, result)
    write_text(markdown, ship.markdown(result))
