"""The embedded default: the toy world's size and the toy models' architectures and training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmtrace.config.base import NonNegative, Positive, Strict


def _divides(part: int, whole: int, part_name: str, whole_name: str) -> None:
    if whole % part:
        raise ValueError(f"{part_name} ({part}) must divide {whole_name} ({whole})")


class HardSplitCfg(Strict):
    """The hard split: the evaluation set of F3b/F4 only (docs/method.md §5, Figs. 15-17).

    On the ordinary renderings the toy MLLMs answer 94-97% correctly, so the correct-vs-
    incorrect comparisons rest on a handful of errors; `n` copies of the analysed splits'
    questions on renderings with heavier pixel noise (`noise`, its standard deviation; the
    ordinary renderings' is 6) and a grey box over the object (`occlusion`, its side as a share
    of the object's diameter) give each MLLM hundreds of errors. n = 0: no hard split."""

    n: NonNegative = 500
    noise: float = Field(40.0, ge=0)
    occlusion: float = Field(0.6, ge=0, le=2)


class ToyWorld(Strict):
    n_known: int = Field(140, ge=10)
    n_movies: int = Field(100, ge=5)
    n_okvqa: int = Field(100, ge=10)
    n_heldout: int = Field(30, ge=2)
    image_size: int = Field(48, ge=16)
    train_images_per_entity: int = Field(8, ge=1)
    hard: HardSplitCfg = HardSplitCfg()


class TokenizerCfg(Strict):
    vocab_size: int = Field(2048, ge=300)


class VisionCfg(Strict):
    """The toy CLIP vision tower, pre-trained once on attribute recognition (the stand-in for
    CLIP pre-training) and frozen inside the MLLMs, as in LLaVA."""

    hidden_size: Positive = 64
    intermediate_size: Positive = 256
    num_layers: int = Field(3, ge=2)
    num_heads: Positive = 4
    patch_size: Positive = 12
    steps: int = Field(3000, ge=1)
    # the planted world's tower (its code strip is learnt faster); None: `steps`
    planted_steps: int | None = Field(None, ge=1)
    batch_size: Positive = 64
    lr: float = Field(3e-3, gt=0)

    @model_validator(mode="after")
    def _heads(self) -> VisionCfg:
        _divides(self.num_heads, self.hidden_size, "num_heads", "hidden_size")
        return self


class TextModelCfg(Strict):
    """A toy language model trained on the textual facts (the stand-in for Vicuna / Phi-2)."""

    arch: Literal["llama", "phi"]
    hidden_size: Positive = 96
    intermediate_size: Positive = 384
    num_layers: int = Field(6, ge=2)
    num_heads: Positive = 4
    # grouped-query attention when < num_heads (llama only)
    num_kv_heads: Positive | None = None
    steps: int = Field(1200, ge=1)
    batch_size: Positive = 64
    lr: float = Field(3e-3, gt=0)
    warmup: NonNegative = 100

    @model_validator(mode="after")
    def _heads(self) -> TextModelCfg:
        _divides(self.num_heads, self.hidden_size, "num_heads", "hidden_size")
        if self.num_kv_heads is not None:
            _divides(self.num_kv_heads, self.num_heads, "num_kv_heads", "num_heads")
        return self


class MLLMCfg(Strict):
    """A toy LLaVA-architecture MLLM: frozen vision tower + projector + a trained text model.
    Stage 1 trains the projector only (feature alignment); stage 2 also the language model."""

    text_model: str
    projector_steps: int = Field(100, ge=0)
    finetune_steps: int = Field(3000, ge=1)
    batch_size: Positive = 32
    lr: float = Field(3e-3, gt=0)
    projector_lr: float = Field(2e-3, gt=0)
    text_mix: float = Field(0.1, ge=0, le=1)  # share of text-only fact examples in stage 2
    # Stage-2 learning rate of the vision tower; 0 keeps it frozen, as LLaVA does. (Measured on
    # the default world: unfreezing it at 5e-4 did not raise accuracy.)
    vision_lr: float = Field(0.0, ge=0)
    warmup: NonNegative = 100
    # The renderings it learns from: the world's (`default`) or the planted world's, whose
    # entity is drawn only in the bottom patch row (a trained control whose visual subset is
    # known, `mmtrace.toyworld.planted`). Its `models:` entry must name the same data.
    data: Literal["default", "planted"] = "default"
    # Which patch features the LM reads: `penultimate` (LLaVA-1.5: the vision tower's
    # penultimate layer, whose tokens have attended to every patch) or `patch_embeddings` (before
    # any vision attention: each visual token sees its own patch only). Measured: reading the
    # penultimate layer, a model trained on the planted world kept 100% accuracy when its 4
    # code-strip tokens were mean-ablated -- the tower had spread the code into every token, so
    # pixel locality was not token locality.
    vision_features: Literal["penultimate", "patch_embeddings"] = "penultimate"


class CompiledCfg(Strict):
    """A compiled control (`mmtrace.models.compiled`): weights set by hand, not trained.
    `variant` (`mmtrace.models.compiled_routes`): `positive` (the visual constraint reads the
    planted tokens and its layer-1 MLP stores the facts), or a negative control: `cut` (the
    constraint never reads the image; nothing is answered), `decoy` (the last token reads the
    image, stores and answers; the constraint carries nothing), `elsewhere` (the constraint
    reads the image, the facts are stored at the last token)."""

    variant: Literal["positive", "cut", "decoy", "elsewhere"]

    @property
    def control(self) -> str:
        """The `models.<name>.control` the variant is: positive, negative (answers by another
        route), or sanity (the cut answers nothing)."""
        return {"positive": "positive", "cut": "sanity"}.get(self.variant, "negative")


class RandomCfg(Strict):
    """A sanity check: a randomly initialised copy of a toy MLLM's architecture."""

    of: str


class ToyTraining(Strict):
    tokenizer: TokenizerCfg = TokenizerCfg()
    vision: VisionCfg = VisionCfg()
    text_models: dict[str, TextModelCfg]
    mllms: dict[str, MLLMCfg]
    compiled: dict[str, CompiledCfg] = {}
    random: dict[str, RandomCfg] = {}

    @model_validator(mode="after")
    def _bases_exist(self) -> ToyTraining:
        for name, m in self.mllms.items():
            if m.text_model not in self.text_models:
                raise ValueError(
                    f"toy_training.mllms.{name}.text_model: {m.text_model!r} is not one of "
                    f"toy_training.text_models ({', '.join(sorted(self.text_models))})"
                )
        groups = (self.text_models, self.mllms, self.compiled, self.random)
        names = [n for g in groups for n in g]
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ValueError(f"toy_training: names used twice: {clash}")
        for name, r in self.random.items():
            if r.of not in self.mllms:
                raise ValueError(f"toy_training.random.{name}.of: {r.of!r} is not a toy MLLM")
        return self

    @property
    def multimodal(self) -> set[str]:
        """Every toy model that reads images (trained, compiled and random MLLMs)."""
        return set(self.mllms) | set(self.compiled) | set(self.random)
