"""What every section shares: strict models (an unknown key is an error), paths and prompts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from mmtrace import numerics

# Bounds shared by the sections and the command line (one source of bounds).
Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Flag = StrictBool  # `true`/`false` only (every section is strict; named for the schema's readers)
# A GPU type as a cluster's GRES names it (SLURM: --gpus=<type>:<n>), e.g. "a100"; None: any.
GpuModel = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+$")] | None
# Jobs per model: more shards than this only multiplies start-up costs (and makes
# Snakemake's DAG slow to build); a split of 9.7K questions on 256 GPUs is the paper's scale.
MAX_SHARDS = 256
Shards = Annotated[int, Field(ge=1, le=MAX_SHARDS)]


class Strict(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently; types are
    strict (`1` is not a boolean, `true` not a number, "3" not an integer) and NaN and
    infinities are refused wherever a number is expected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Paths(Strict):
    data: str = "data/toy"
    results: str = "results"
    figures: str = "figures"
    tables: str = "paper_tables"
    logs: str = "logs"
    # the shipped toy checkpoints and their manifest (`toy_models: shipped`)
    checkpoints: str = "checkpoints/toy"


class Numerics(Strict):
    """Pinned numerical code paths (`mmtrace.numerics`): with `pin`, every job runs with the
    environment variables of `env`, so the same inputs give the same bits on any x86-64 CPU
    with AVX2. Another `env` imitates another CPU (the cross-machine test does)."""

    pin: Flag = True
    env: dict[str, str] = Field(default_factory=lambda: dict(numerics.PINS))

    @model_validator(mode="after")
    def _known(self) -> Numerics:
        for key, value in self.env.items():
            if key not in numerics.KNOWN:
                raise ValueError(
                    f"numerics.env: unknown variable {key!r}; use {sorted(numerics.KNOWN)}"
                )
            allowed = numerics.KNOWN[key]
            if allowed is not None and value not in allowed:
                raise ValueError(f"numerics.env.{key}: {value!r} is not one of {list(allowed)}")
        return self


# What the families' processors expand into visual tokens: LLaVA's (and Idefics3's, PaliGemma's)
# <image>, Qwen2-VL's image pad, Gemma-3's image block start, Mllama's image tag.
IMAGE_PLACEHOLDERS = ("<image>", "<|image_pad|>", "<start_of_image>", "<|image|>")


class Prompts(Strict):
    """Prompt templates; `{question}` is replaced by the question text. The defaults are the
    release's (LLaVA's) prompt, including its `?` after questions that already end in one."""

    mllm: str = "<image>\nUSER: {question}? Answer in a few words.\nASSISTANT:"
    llm: str = "USER: {question}? Answer in a few words.\nASSISTANT:"

    @model_validator(mode="after")
    def _placeholders(self) -> Prompts:
        for name in ("mllm", "llm"):
            template = getattr(self, name)
            chat = template == "chat" or template.startswith("chat:")
            if "{question}" not in template and template != "chat":
                raise ValueError(f"prompts.{name} must contain '{{question}}'")
            if name == "mllm" and not chat and not any(p in template for p in IMAGE_PLACEHOLDERS):
                raise ValueError(
                    "prompts.mllm must contain an image placeholder ('<image>' for LLaVA, or "
                    f"one of {list(IMAGE_PLACEHOLDERS[1:])}), or be the model's chat template "
                    "('chat' or 'chat:<text with {question}>')"
                )
        return self
