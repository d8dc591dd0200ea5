"""A model's own analysis settings: the workflow's, wherever the workflow has settings for it.

The defaults of `mmtrace.load(...).trace / contributions / ablate / edit` and of the command
line come from the same place as the workflow's: the workflow's configuration file
(`config.yaml`, validated by `mmtrace.config`), read as the workflow reads it.

- **The toy models** (a checkpoint named like one of the configuration's toy models, e.g.
  `checkpoints/toy/toy-llava`, `results/models/toy-llava-compiled`, or any checkpoint under
  `paths.checkpoints`): the toy world's sections (config.yaml `tracing`, `attention`,
  `ablation`, `editing`: MultEdit at layer 0, 40 steps of lr 0.5), with the model's own
  `models.<name>.settings` over them, and its prompt.
- **The paper's models** (a hub id or folder named like an entry of config.yaml
  `paper.models`, e.g. `llava-hf/llava-1.5-7b-hf`): the same sections with `paper.settings`
  over them (the release's MultEdit: layer 2, 10 steps of lr 0.1), the model's prompt and dtype.
- **Any other model**: the schema's defaults (`mmtrace.config`; MultEdit's are the release's).

Which configuration file: the `config` argument, else `$MMTRACE_CONFIG`, else the repository's
`config.yaml` beside the package's source (an editable install), else none (the schema's
defaults for every model). `ModelDefaults.source` says which applied.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmtrace.config import (
    Ablation,
    Attention,
    Config,
    Editing,
    Prompts,
    Tracing,
    validate,
)

SECTIONS = ("tracing", "attention", "ablation", "editing")
REPO_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"


@dataclass(frozen=True)
class ModelDefaults:
    """The settings an analysis of one model starts from, and where they came from."""

    source: str  # e.g. "config.yaml (toy model toy-llava)", "mmtrace.config defaults"
    tracing: Tracing
    attention: Attention
    ablation: Ablation
    editing: Editing
    prompts: Prompts
    dtype: str  # float32 | bfloat16 | float16
    seed: int


def config_file(config: str | Path | None = None) -> Path | None:
    """The workflow configuration the defaults are read from (None: the schema's)."""
    if config is not None:
        return Path(config)
    env = os.environ.get("MMTRACE_CONFIG")
    if env:
        return Path(env)
    return REPO_CONFIG if REPO_CONFIG.is_file() else None


@functools.lru_cache(maxsize=8)
def worlds(path: Path | None) -> tuple[dict | None, dict | None]:
    """(toy world, paper world) of a configuration file, validated as the workflow does."""
    if path is None:
        return None, None
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    toy = validate({**raw, "world": "toy"}, str(path))
    paper = validate({**raw, "world": "paper"}, str(path))
    toy["_root"] = str(path.resolve().parent)
    return toy, paper


def _toy_names(cfg: dict) -> set[str]:
    t = cfg["toy_training"]
    names = set(cfg["models"]) | set(t["mllms"]) | set(t["text_models"])
    return names | set(t.get("compiled") or {}) | set(t.get("random") or {})


def _identify(name: str, toy: dict, paper: dict) -> tuple[str, dict, str | None] | None:
    """(world, its config, the model's entry in it or None) for a path, hub id or name."""
    text = str(name).rstrip("/")
    leaf = Path(text).name
    for key, spec in paper["models"].items():
        repo = spec.get("repo") or ""
        hub_cache = "models--" + repo.replace("/", "--")
        if text == repo or leaf == key or (repo and hub_cache in text):
            return "paper", paper, key
    if leaf in _toy_names(toy):
        return "toy", toy, leaf if leaf in toy["models"] else None
    shipped = (Path(toy["_root"]) / toy["paths"]["checkpoints"]).resolve()
    try:
        if Path(text).expanduser().resolve().is_relative_to(shipped):
            return "toy", toy, None
    except OSError:  # pragma: no cover - an unreadable path is no shipped checkpoint
        pass
    return None


def defaults_for(model: str | Path | None, config: str | Path | None = None) -> ModelDefaults:
    """The settings of `model` (a checkpoint path, hub id or the name a model was loaded
    under): see the module's docstring for which apply."""
    path = config_file(config)
    toy, paper = worlds(path.resolve() if path is not None else None)
    found = _identify(str(model), toy, paper) if toy is not None and model else None
    if found is None:
        return ModelDefaults(
            "mmtrace.config defaults" + (f" ({model} is not a model of {path})" if path else ""),
            Tracing(),
            Attention(),
            Ablation(),
            Editing(),
            Prompts(),
            "float32",
            Config.model_fields["seed"].default,
        )
    world, cfg, entry = found
    spec: dict[str, Any] = cfg["models"].get(entry, {}) if entry else {}
    over = spec.get("settings", {})
    sections = {s: {**cfg[s], **(over.get(s) or {})} for s in SECTIONS}
    prompts = dict(cfg["prompts"])
    if spec.get("prompt"):
        prompts[spec["role"]] = spec["prompt"]
    where = f"{path.name} ({world} model {entry or Path(str(model)).name})"
    return ModelDefaults(
        where,
        Tracing(**sections["tracing"]),
        Attention(**sections["attention"]),
        Ablation(**sections["ablation"]),
        Editing(**sections["editing"]),
        Prompts(**prompts),
        spec.get("dtype", "float32"),
        cfg["seed"],
    )


def describe(
    section: str, field: str, config: str | Path | None = None, first: bool = False
) -> str:
    """Where the default of `section.field` comes from, for --help: its value for the toy
    models, the paper's models and any other model (`first`: a list field's first item)."""
    schemas = {"tracing": Tracing, "attention": Attention, "ablation": Ablation}
    schema = getattr(schemas.get(section, Editing)(), field)
    path = config_file(config)
    toy, paper = worlds(path.resolve() if path is not None else None)
    name = f"{section}.{field}" + ("[0]" if first else "")

    def show(value: Any) -> str:
        value = value[0] if first else value
        return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)

    if toy is None:
        return f"default: {show(schema)} (mmtrace.config {name})"
    values = [show(toy[section][field]), show(paper[section][field]), show(schema)]
    if len(set(values)) == 1:
        return f"default: {values[0]} ({path.name} {name}; per-model settings apply)"
    return (
        f"default: the model's own: {values[0]} for the toy models ({path.name} {name}), "
        f"{values[1]} for the paper's (paper.settings), else {values[2]}"
    )
