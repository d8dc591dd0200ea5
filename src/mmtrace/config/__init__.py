"""The workflow's configuration schema.

`validate()` runs when the Snakefile starts: an unknown key or a bad value fails with a message
that names it, before any job runs. Defaults live in these models (one home per default) and
config.yaml sets every key explicitly so users see them. Sections: `base` (paths, prompts),
`toy` (the toy world and models), `models` (what the analyses run on, job resources),
`analyses` (evaluation, tracing, attention, ablation, editing), `verdicts` (the claims'
decision rules, the reproduction check's tolerances), `paper` (the paper world).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError, model_validator

from mmtrace.config.analyses import (
    Ablation,
    Attention,
    Editing,
    Evaluation,
    MultEditSettings,
    Routes,
    Tracing,
    Tuning,
    Validation,
)
from mmtrace.config.base import Flag, GpuModel, Numerics, Paths, Positive, Prompts, Strict
from mmtrace.config.models import ModelSpec, Resources
from mmtrace.config.paper import (
    REQUIRED_SOURCES,
    SETTINGS_SECTIONS,
    Downloads,
    HeldOut,
    Paper,
    Source,
)
from mmtrace.config.toy import (
    CompiledCfg,
    HardSplitCfg,
    MLLMCfg,
    RandomCfg,
    TextModelCfg,
    TokenizerCfg,
    ToyTraining,
    ToyWorld,
    VisionCfg,
)
from mmtrace.config.verdicts import Claims, Robustness, Tolerance, Verify

__all__ = [
    "REQUIRED_SOURCES",
    "RESOURCE_RULES",
    "SETTINGS_SECTIONS",
    "Ablation",
    "Attention",
    "Claims",
    "CompiledCfg",
    "Config",
    "ConfigError",
    "Downloads",
    "Editing",
    "Evaluation",
    "HardSplitCfg",
    "HeldOut",
    "MLLMCfg",
    "ModelSpec",
    "MultEditSettings",
    "Numerics",
    "Paper",
    "Paths",
    "Prompts",
    "RandomCfg",
    "Resources",
    "Robustness",
    "Routes",
    "Source",
    "TextModelCfg",
    "Tolerance",
    "TokenizerCfg",
    "ToyTraining",
    "ToyWorld",
    "Tracing",
    "Tuning",
    "Validation",
    "Verify",
    "VisionCfg",
    "gpu_request",
    "command_line_values",
    "job_resources",
    "select_world",
    "validate",
]

RESOURCE_RULES = (
    "evaluate_model",
    "trace_shard",
    "attention_shard",
    "ablation_shard",
    "edit_shard",
    "edit_sweep",
    "route_diagnostics",
)


class Config(Strict):
    world: Literal["toy", "paper"] = "toy"
    seed: int = 1234
    threads: Positive = 1  # torch threads per job; snakemake runs jobs in parallel
    use_gpu: Flag = False  # model jobs request a GPU (resource gpu=1)
    # The GPU type model jobs ask for when `use_gpu` (SLURM: --gpus=<gpu_model>:1); None: any.
    gpu_model: GpuModel = None
    paths: Paths = Paths()
    # the toy models the analyses run on: the committed checkpoints of `paths.checkpoints`
    # (`shipped`, verified by checksum) or models trained in the run (`train`)
    toy_models: Literal["shipped", "train"] = "shipped"
    numerics: Numerics = Numerics()
    prompts: Prompts = Prompts()
    toy_world: ToyWorld = ToyWorld()
    toy_training: ToyTraining
    models: dict[str, ModelSpec]
    evaluation: Evaluation = Evaluation()
    tracing: Tracing = Tracing()
    attention: Attention = Attention()
    ablation: Ablation = Ablation()
    editing: Editing = Editing()
    routes: Routes = Routes()
    validation: Validation = Validation()
    claims: Claims = Claims()
    verify: Verify = Verify()
    robustness: Robustness = Robustness()
    resources: dict[str, Resources] = {}
    paper: Paper = Paper()

    @model_validator(mode="after")
    def _models_known(self) -> Config:
        unknown = set(self.resources) - set(RESOURCE_RULES)
        if unknown:
            raise ValueError(f"resources: unknown rules {sorted(unknown)}; use {RESOURCE_RULES}")
        if not self.models:
            raise ValueError("models: no model to analyse")
        patch, size = self.toy_training.vision.patch_size, self.toy_world.image_size
        if size % patch:
            raise ValueError(
                f"toy_training.vision.patch_size ({patch}) must divide toy_world.image_size "
                f"({size})"
            )
        toy = self.toy_training
        for name, spec in self.models.items():
            if spec.source == "toy" and name not in (toy.multimodal | set(toy.text_models)):
                raise ValueError(f"models.{name}: a toy model must be defined in toy_training")
            if spec.source == "toy" and (name in toy.multimodal) != (spec.role == "mllm"):
                raise ValueError(f"models.{name}.role: does not match its toy_training entry")
            compiled = toy.compiled.get(name) if spec.source == "toy" else None
            if compiled is not None and spec.control not in ("none", compiled.control):
                raise ValueError(
                    f"models.{name}.control: {spec.control!r}, but its compiled variant "
                    f"{compiled.variant!r} is a {compiled.control} control"
                )
            if compiled is not None and spec.data != "planted":
                raise ValueError(
                    f"models.{name}.data: a compiled control reads the planted world's code "
                    "strip; analyse it on `planted`"
                )
            if name in toy.mllms and toy.mllms[name].data != spec.data:
                raise ValueError(
                    f"models.{name}.data: {spec.data!r}, but toy_training.mllms.{name} is "
                    f"trained on {toy.mllms[name].data!r} renderings; analyse it on the data it "
                    "learnt from"
                )
            unknown = set(spec.settings) - set(SETTINGS_SECTIONS)
            if unknown:
                raise ValueError(f"models.{name}.settings: unknown sections {sorted(unknown)}")
            for section, over in spec.settings.items():
                if over is None:
                    if section != "editing":
                        raise ValueError(
                            f"models.{name}.settings.{section}: null (only `editing` may be "
                            "null: the model is not edited)"
                        )
                    if spec.role != "mllm":
                        raise ValueError(f"models.{name}.settings.editing: only MLLMs are edited")
                    continue
                type(getattr(self, section)).model_validate(
                    {**getattr(self, section).model_dump(), **over}
                )
            if spec.llm is not None and spec.llm not in self.models:
                raise ValueError(f"models.{name}.llm: {spec.llm!r} is not in models")
        return self


def gpu_request(cfg: dict[str, Any]) -> dict[str, Any]:
    """The GPU part of a model job's resources, from the workflow config alone: `gpu` (1 when
    `use_gpu`, else 0) and, only when a GPU is requested and `gpu_model` is set, `gpu_model`.
    The SLURM plugin adds `--gpus=<model>:<n>` whenever `gpu_model` is set, even for 0 GPUs, so
    with `use_gpu: false` no job carries it."""
    if not cfg["use_gpu"]:
        return {"gpu": 0}
    out: dict[str, Any] = {"gpu": 1}
    if cfg.get("gpu_model"):
        out["gpu_model"] = cfg["gpu_model"]
    return out


def job_resources(cfg: dict[str, Any], rule: str) -> dict[str, Any]:
    """A model job's Snakemake resources: `gpu` (1 when `use_gpu`), and `mem_mb` and `runtime`
    (minutes) from `resources.<rule>` times the attempt number, so a job that a retry resubmits
    (out of memory or time) asks for more."""
    base = Resources(**cfg["resources"].get(rule, {}))
    return {
        **gpu_request(cfg),
        "mem_mb": lambda wildcards, attempt: base.mem_mb * attempt,
        "runtime": lambda wildcards, attempt: base.runtime * attempt,
    }


class ConfigError(ValueError):
    pass


def _scalar(text: str) -> Any:
    """A command-line string as the YAML scalar it spells (`true`, `7`, `0.5`, `null`); any
    other text (a word, a prompt with braces) stays the string it is."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, bool | int | float) else text


def _typed(value: Any) -> Any:
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def command_line_values(cfg: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """`cfg` with the values that came from Snakemake's `--config` typed as users write them.

    Snakemake hands `--config use_gpu=true` over as the string "true" (and every leaf of
    `key={...}` as a string), which the strict schema rightly refuses in a config file. So
    the command line's leaves are read as YAML scalars here (`true`, `7`, `null`), while
    config.yaml keeps its strict types."""
    out = dict(cfg)

    def put(target: dict, over: dict) -> None:
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = dict(target[key])
                put(target[key], value)
            else:
                target[key] = _typed(value)

    put(out, overrides or {})
    return out


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def select_world(raw: dict[str, Any]) -> dict[str, Any]:
    """The config the workflow runs: as written for `world: toy`; for `world: paper`, the
    `paper` section's paths, models, GPU use and resources, and its `settings` merged over the
    analysis sections (so `--config world=paper` is the one switch)."""
    if raw.get("world") != "paper":
        return raw
    paper = raw.get("paper") or {}
    out = dict(raw)
    for key in ("paths", "use_gpu", "gpu_model", "models", "resources"):
        if key in paper:
            out[key] = paper[key]
    if paper.get("run") is not None and isinstance(out.get("models"), dict):
        out["models"] = {k: v for k, v in out["models"].items() if k in paper["run"]}
    out.setdefault("paths", {})
    if "paths" not in paper:
        out["paths"] = Paper().paths.model_dump()
    for section, over in (paper.get("settings") or {}).items():
        if isinstance(over, dict) and section in SETTINGS_SECTIONS:
            out[section] = _merge(out.get(section) or {}, over)
    return out


def validate(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate a raw config mapping (after selecting its world); return it with defaults
    filled in (a plain dict)."""
    try:
        cfg = Config.model_validate(select_world(raw))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "<top level>"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"  {loc}: {msg}")
        raise ConfigError(f"invalid {source}:\n" + "\n".join(lines)) from None
    return cfg.model_dump(mode="json")
