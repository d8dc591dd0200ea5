"""The workflow's configuration schema.

`validate()` runs when the Snakefile starts: an unknown key or a bad value fails with a message
that names it, before any job runs. Defaults live here and in config.yaml (which sets every key
explicitly so users see them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Paths(_Strict):
    data: str = "data/toy"
    results: str = "results"
    figures: str = "figures"
    tables: str = "paper_tables"
    logs: str = "logs"


class Prompts(_Strict):
    """Prompt templates; `{question}` is replaced by the question text. The defaults are the
    release's (LLaVA's) prompt, including its `?` after questions that already end in one."""

    mllm: str = "<image>\nUSER: {question}? Answer in a few words.\nASSISTANT:"
    llm: str = "USER: {question}? Answer in a few words.\nASSISTANT:"

    @model_validator(mode="after")
    def _placeholders(self) -> Prompts:
        for name in ("mllm", "llm"):
            if "{question}" not in getattr(self, name):
                raise ValueError(f"prompts.{name} must contain '{{question}}'")
        if "<image>" not in self.mllm:
            raise ValueError("prompts.mllm must contain the image placeholder '<image>'")
        return self


class ToyWorld(_Strict):
    n_known: int = Field(140, ge=10)
    n_movies: int = Field(100, ge=5)
    n_okvqa: int = Field(100, ge=10)
    n_heldout: int = Field(30, ge=2)
    image_size: int = Field(48, ge=16)
    train_images_per_entity: int = Field(8, ge=1)


class TokenizerCfg(_Strict):
    vocab_size: int = Field(2048, ge=300)


class VisionCfg(_Strict):
    """The toy CLIP vision tower, pre-trained once on attribute recognition (the stand-in for
    CLIP pre-training) and frozen inside the MLLMs, as in LLaVA."""

    hidden_size: int = 64
    intermediate_size: int = 256
    num_layers: int = Field(3, ge=2)
    num_heads: int = 4
    patch_size: int = 12
    steps: int = Field(3000, ge=1)
    batch_size: int = 64
    lr: float = Field(3e-3, gt=0)


class TextModelCfg(_Strict):
    """A toy language model trained on the textual facts (the stand-in for Vicuna / Phi-2)."""

    arch: Literal["llama", "phi"]
    hidden_size: int = 96
    intermediate_size: int = 384
    num_layers: int = Field(6, ge=2)
    num_heads: int = 4
    num_kv_heads: int | None = None  # grouped-query attention when < num_heads (llama only)
    steps: int = Field(1200, ge=1)
    batch_size: int = 64
    lr: float = Field(3e-3, gt=0)
    warmup: int = 100


class MLLMCfg(_Strict):
    """A toy LLaVA-architecture MLLM: frozen vision tower + projector + a trained text model.
    Stage 1 trains the projector only (feature alignment); stage 2 also the language model."""

    text_model: str
    projector_steps: int = Field(100, ge=0)
    finetune_steps: int = Field(3000, ge=1)
    batch_size: int = 32
    lr: float = Field(3e-3, gt=0)
    projector_lr: float = Field(2e-3, gt=0)
    text_mix: float = Field(0.1, ge=0, le=1)  # share of text-only fact examples in stage 2
    # Stage-2 learning rate of the vision tower; 0 keeps it frozen, as LLaVA does. (Measured on
    # the default world: unfreezing it at 5e-4 did not raise accuracy.)
    vision_lr: float = Field(0.0, ge=0)
    warmup: int = 100


class ToyTraining(_Strict):
    tokenizer: TokenizerCfg = TokenizerCfg()
    vision: VisionCfg = VisionCfg()
    text_models: dict[str, TextModelCfg]
    mllms: dict[str, MLLMCfg]

    @model_validator(mode="after")
    def _bases_exist(self) -> ToyTraining:
        for name, m in self.mllms.items():
            if m.text_model not in self.text_models:
                raise ValueError(
                    f"toy_training.mllms.{name}.text_model: {m.text_model!r} is not one of "
                    f"toy_training.text_models ({', '.join(sorted(self.text_models))})"
                )
        clash = set(self.mllms) & set(self.text_models)
        if clash:
            raise ValueError(f"toy_training: names used twice: {sorted(clash)}")
        return self


class ModelSpec(_Strict):
    """A model the analyses run on. `source: toy` = trained by this workflow; `source: hub` = a
    pinned Hugging Face snapshot (`repo` at `revision`), fetched by the `fetch_model` rule."""

    role: Literal["mllm", "llm"]
    source: Literal["toy", "hub"] = "toy"
    repo: str | None = None  # hub: e.g. llava-hf/llava-1.5-7b-hf
    revision: str | None = None  # hub: a commit hash (or tag) of `repo`
    # How the checkpoint is loaded: `native` transformers classes, `bunny` (multimodal Phi-2,
    # our wrapper without remote code), or `auto` (bunny if the config says so, else native).
    adapter: Literal["auto", "native", "bunny"] = "auto"
    trust_remote_code: bool = False  # the only way remote code runs: an explicit opt-in here
    # `safetensors` only, or `convert_pickle`: a repo that ships only pytorch_model*.bin has its
    # shards read by torch's weights-only unpickler and rewritten as safetensors, once, by
    # fetch_model (an explicit opt-in per model, like remote code).
    weights: Literal["safetensors", "convert_pickle"] = "safetensors"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "auto"
    llm: str | None = None  # an MLLM's language-model counterpart (Fig. 1), if any
    # The prompt template of this model (its role's entry in `prompts` if None).
    prompt: str | None = None

    @model_validator(mode="after")
    def _hub_pinned(self) -> ModelSpec:
        if self.source == "hub" and not (self.repo and self.revision):
            raise ValueError("a hub model needs `repo` and `revision` (pin a commit hash)")
        if self.prompt is not None:
            Prompts(**{self.role: self.prompt})  # same placeholder checks as `prompts`
        return self


class Resources(_Strict):
    """A GPU job's first attempt: host memory (MB) and wall time (minutes); each retry
    (`--retries`, the SLURM profile's `retries`) multiplies both by the attempt number."""

    mem_mb: int = Field(4000, ge=100)
    runtime: int = Field(60, ge=1)


SETTINGS_SECTIONS = ("evaluation", "tracing", "attention", "ablation", "editing")
RESOURCE_RULES = (
    "evaluate_model",
    "trace_shard",
    "attention_shard",
    "ablation_shard",
    "edit_shard",
    "edit_sweep",
)


class Source(_Strict):
    """A file the paper world downloads: from `url`, or Google Drive `gdrive` (a file id).
    `sha256` pins it; `null` means unknown when the config was written: the first download's
    digest is recorded in the lock file if `downloads.unpinned` is `record`, else it fails."""

    url: str | None = None
    gdrive: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(None, ge=0)
    file: str  # name under <data>/raw/
    # Archives: extracted into <data>/raw/<name>/; `members` pins extracted files' sha256.
    extract: bool = False
    members: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        if (self.url is None) == (self.gdrive is None):
            raise ValueError("give exactly one of `url` and `gdrive`")
        if "/" in self.file or self.file.startswith("."):
            raise ValueError(f"file: {self.file!r} must be a plain file name")
        return self


class Downloads(_Strict):
    unpinned: Literal["error", "record"] = "record"
    retries: int = Field(5, ge=1)
    workers: int = Field(8, ge=1)  # parallel image downloads
    coco_url: str = "http://images.cocodataset.org/val2014/{name}"
    sources: dict[str, Source] = {}


class HeldOut(_Strict):
    """The long-tail editing split: an Encyclopedic-VQA landmark subset (SPEC 7b)."""

    n: int = Field(300, ge=1)
    question_type: str = "templated"
    dataset_name: str = "landmarks"
    keyword: str = "country"


REQUIRED_SOURCES = (
    "known_csv",
    "movies_csv",
    "okvqa_csv",
    "known_1000",
    "movies_table",
    "okvqa_questions",
    "okvqa_annotations",
    "known_images",
    "movies_images",
    "evqa_csv",
    "gldv2_index",
)


class Paper(_Strict):
    """The paper world (`world: paper`): real data and checkpoints. Its `paths`, `use_gpu`,
    `models`, `resources` and `settings` replace the top-level ones when it is selected;
    `settings` holds per-section overrides (e.g. the paper's windows for 32-layer models)."""

    paths: Paths = Paths(
        data="data/paper",
        results="results/paper",
        figures="figures/paper",
        tables="paper_tables/paper",
        logs="logs/paper",
    )
    use_gpu: bool = True
    models: dict[str, ModelSpec] = {}
    # Which of `models` to run (None: all); an MLLM's `llm` counterpart must be run with it.
    run: list[str] | None = None
    resources: dict[str, Resources] = {}
    settings: dict[str, dict[str, Any]] = {}
    downloads: Downloads = Downloads()
    heldout: HeldOut = HeldOut()

    @model_validator(mode="after")
    def _complete(self) -> Paper:
        missing = [s for s in REQUIRED_SOURCES if s not in self.downloads.sources]
        if self.models and missing:
            raise ValueError(f"downloads.sources: missing {', '.join(missing)}")
        extra = set(self.run or ()) - set(self.models)
        if extra:
            raise ValueError(f"run: not in paper.models: {sorted(extra)}")
        unknown = set(self.settings) - set(SETTINGS_SECTIONS)
        if unknown:
            raise ValueError(f"settings: unknown sections {sorted(unknown)}")
        return self


class Evaluation(_Strict):
    batch_size: int = Field(64, ge=1)


class Tracing(_Strict):
    """MultiModalCausalTrace settings (SPEC 4). Windows count layers in `window_style`'s
    convention: `centered` restores `window` layers centred on each layer (ROME), `radius`
    restores [l - window, l + window] (the release). The paper's windows for 32-layer models:
    1 and 3 (single constraint), 6 (multi-constraint), 5 (the LLM)."""

    kinds: list[Literal["mlp", "attn", "hidden"]] = ["mlp", "attn", "hidden"]
    window_style: Literal["centered", "radius"] = "centered"
    windows: list[int] = Field([1, 3], min_length=1)  # single-constraint traces (Fig. 3)
    multi_window: int = Field(6, ge=1)  # multi-constraint traces at the textual constraint
    llm_window: int = Field(5, ge=1)  # the LLM's traces (Fig. 1)
    corruption: Literal["replace", "repeat", "noise"] = "replace"
    noise_scale: float = Field(3.0, gt=0)  # `noise`: sigma = scale x std of the embeddings
    # Trace only questions the model answers correctly (the paper's choice); false traces all.
    only_correct: bool = True
    # A question is traced only if the model answers it correctly and the corruption lowers
    # p(answer) by at least this much (None: no such screening); exclusions are counted.
    min_drop: float | None = Field(0.1, ge=0, le=1)
    max_questions: int | None = Field(None, ge=1)  # per model and split (None: all)
    shards: int = Field(1, ge=1)  # jobs per model and split (spread over SLURM)
    batch_size: int = Field(64, ge=1)  # restorations per forward pass
    examples: int = Field(3, ge=1)  # per-question heatmaps drawn per model and split

    @model_validator(mode="after")
    def _windows(self) -> Tracing:
        if any(w < 1 for w in self.windows):
            raise ValueError("tracing.windows: every window must be >= 1")
        return self


class Attention(_Strict):
    """Information transfer (SPEC 5): Eq. 1 contributions, Figs. 5 and 15-17."""

    visual_layer: int = Field(0, ge=0)  # Fig. 5: visual tokens -> constraint at this layer
    top_share: float = Field(0.05, gt=0, le=1)  # concentration and consistency: the top 5%
    n_perm: int = Field(1000, ge=1)  # consistency: draws of the random top-k baseline
    # Constraint -> last token per layer: how a constraint's tokens are combined (Yuksekgonul
    # et al. take the largest token contribution).
    reduce: Literal["max", "sum", "mean"] = "max"
    n_boot: int = Field(1000, ge=1)  # bootstrap resamples for the AUROC intervals (Fig. 17)
    # Fig. 17 picks the layer on a random half of the questions (stratified by correctness) and
    # evaluates on the other half; each half needs this many correct and incorrect answers.
    min_per_class: int = Field(3, ge=2)
    max_questions: int | None = Field(None, ge=1)  # per model and split (None: all)
    shards: int = Field(1, ge=1)  # jobs per model and split


class Ablation(_Strict):
    """Visual-token ablation (SPEC 6): knock out the top-k visual tokens ranked by their
    contribution to the visual constraint, against k random and the k lowest-ranked."""

    ways: list[Literal["block", "mean"]] = Field(["block", "mean"], min_length=1)
    # k as fractions of the visual tokens (LLaVA: 36, 72, 144, 288 of 576).
    fractions: list[float] = Field([0.0625, 0.125, 0.25, 0.5], min_length=1)
    block_layers: int = Field(4, ge=1)  # `block`: attention to the tokens is cut in layers < this
    random_draws: int = Field(3, ge=1)  # random k-subsets per question and k (averaged)
    mean_images: int = Field(64, ge=1)  # `mean`: images of the split averaged per patch
    only_correct: bool = True  # ablate only questions the model answers correctly
    max_questions: int | None = Field(None, ge=1)  # per model and split (None: all)
    shards: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)  # ablated variants per forward pass

    @model_validator(mode="after")
    def _fractions(self) -> Ablation:
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError("ablation.fractions: every fraction must be in (0, 1]")
        return self


class Editing(_Strict):
    """MultEdit (SPEC 7) and its baselines. The release's values: layer 2 (of 32), 10 steps,
    lr 0.1, weight decay 1e-3, lambda 0.01, clamp 1e-4 (ROME: 4)."""

    scenarios: list[Literal["error_correction", "long_tail"]] = Field(
        ["error_correction", "long_tail"], min_length=1
    )
    layer: int = Field(2, ge=0)  # the edited MLP (an early causal layer)
    steps: int = Field(10, ge=1)  # Adam steps optimising delta
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(1e-3, ge=0)  # coefficient of ||delta|| / ||v0||^2
    lam: float = Field(0.01, gt=0)  # lambda of the closed form
    clamp: float = Field(4.0, gt=0)  # ||delta|| <= clamp * ||v0||
    finetune_steps: int = Field(10, ge=1)  # both baselines: Adam on the same W
    finetune_lr: float = Field(1e-3, gt=0)
    finetune_norm: float = Field(1e-3, gt=0)  # FT-L: L-inf bound on each weight's change
    unrelated: int = Field(32, ge=1)  # unrelated questions scored for specificity
    max_edits: int | None = Field(None, ge=1)  # per model and scenario (None: all)
    sweep_layers: list[int] | None = None  # Fig. 14 (None: every layer)
    sweep_edits: int = Field(20, ge=1)  # error-correction questions edited at each layer
    clamp_sweep: list[float] = [1e-4, 1.0, 4.0]  # MultEdit efficacy at each clamp (the release's
    # 1e-4 included), at `layer`, on the same questions as the layer sweep
    steps_sweep: list[int] = [10, 40, 160]  # ... and at each number of delta steps
    shards: int = Field(1, ge=1)  # jobs per model and scenario


class Config(_Strict):
    world: Literal["toy", "paper"] = "toy"
    seed: int = 1234
    threads: int = Field(1, ge=1)  # torch threads per job; snakemake runs jobs in parallel
    use_gpu: bool = False  # model jobs request a GPU (resource gpu=1)
    paths: Paths = Paths()
    prompts: Prompts = Prompts()
    toy_world: ToyWorld = ToyWorld()
    toy_training: ToyTraining
    models: dict[str, ModelSpec]
    evaluation: Evaluation = Evaluation()
    tracing: Tracing = Tracing()
    attention: Attention = Attention()
    ablation: Ablation = Ablation()
    editing: Editing = Editing()
    resources: dict[str, Resources] = {}
    paper: Paper = Paper()

    @model_validator(mode="after")
    def _models_known(self) -> Config:
        unknown = set(self.resources) - set(RESOURCE_RULES)
        if unknown:
            raise ValueError(f"resources: unknown rules {sorted(unknown)}; use {RESOURCE_RULES}")
        if not self.models:
            raise ValueError("models: no model to analyse")
        for name, spec in self.models.items():
            if spec.source == "toy" and name not in (
                self.toy_training.mllms.keys() | self.toy_training.text_models.keys()
            ):
                raise ValueError(f"models.{name}: a toy model must be defined in toy_training")
            if spec.source == "toy" and (name in self.toy_training.mllms) != (spec.role == "mllm"):
                raise ValueError(f"models.{name}.role: does not match its toy_training entry")
            if spec.llm is not None and spec.llm not in self.models:
                raise ValueError(f"models.{name}.llm: {spec.llm!r} is not in models")
        return self


def job_resources(cfg: dict[str, Any], rule: str) -> dict[str, Any]:
    """A model job's Snakemake resources: `gpu` (1 when `use_gpu`), and `mem_mb` and `runtime`
    (minutes) from `resources.<rule>` times the attempt number, so a job that a retry resubmits
    (out of memory or time) asks for more."""
    base = Resources(**cfg["resources"].get(rule, {}))
    return {
        "gpu": 1 if cfg["use_gpu"] else 0,
        "mem_mb": lambda wildcards, attempt: base.mem_mb * attempt,
        "runtime": lambda wildcards, attempt: base.runtime * attempt,
    }


class ConfigError(ValueError):
    pass


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
    for key in ("paths", "use_gpu", "models", "resources"):
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
