"""The models every analysis runs on, and the resources of the jobs that load them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mmtrace.config.base import Flag, Prompts, Strict


class ModelSpec(Strict):
    """A model the analyses run on. `source: toy` = trained by this workflow; `source: hub` = a
    pinned Hugging Face snapshot (`repo` at `revision`), fetched by the `fetch_model` rule."""

    role: Literal["mllm", "llm"]
    source: Literal["toy", "hub"] = "toy"
    repo: str | None = None  # hub: e.g. llava-hf/llava-1.5-7b-hf
    revision: str | None = None  # hub: a commit hash (or tag) of `repo`
    # How the checkpoint is loaded: `native` transformers classes, `bunny` (multimodal Phi-2,
    # our wrapper without remote code), or `auto` (bunny if the config says so, else native).
    adapter: Literal["auto", "native", "bunny"] = "auto"
    trust_remote_code: Flag = False  # the only way remote code runs: an explicit opt-in here
    # `safetensors` only, or `convert_pickle`: a repo that ships only pytorch_model*.bin has its
    # shards read by torch's weights-only unpickler and rewritten as safetensors, once, by
    # fetch_model (an explicit opt-in per model, like remote code).
    weights: Literal["safetensors", "convert_pickle"] = "safetensors"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "auto"
    llm: str | None = None  # an MLLM's language-model counterpart (Fig. 1), if any
    # The prompt template of this model (its role's entry in `prompts` if None).
    prompt: str | None = None
    # Which data the model is analysed on: the world's own (`default`) or, for the controls
    # read through the planted patches, the planted world (same questions, planted images).
    data: Literal["default", "planted"] = "default"
    # A method-validation control: `positive` (the paper's mechanism, known by construction),
    # `negative` (answers as a positive does, by another known route: the fair false-positive
    # test), `sanity` (answers nothing: route cut, random weights; a method must find nothing
    # there, but no method could, so it is reported apart from the false-positive rate), or
    # none (a model whose mechanism is the question).
    control: Literal["none", "positive", "negative", "sanity"] = "none"
    # Per-model overrides of the analysis sections (e.g. fewer questions for a control), merged
    # over the top-level `tracing`, `attention`, `ablation`, `editing`. `editing: null`: the
    # model is not edited (a control whose construction fixes nothing MultEdit is scored on).
    settings: dict[str, dict[str, Any] | None] = {}

    @model_validator(mode="after")
    def _hub_pinned(self) -> ModelSpec:
        if self.source == "hub" and not (self.repo and self.revision):
            raise ValueError("a hub model needs `repo` and `revision` (pin a commit hash)")
        if self.prompt is not None:
            Prompts(**{self.role: self.prompt})  # same placeholder checks as `prompts`
        return self


class Resources(Strict):
    """A GPU job's first attempt: host memory (MB) and wall time (minutes); each retry
    (`--retries`, the SLURM profile's `retries`) multiplies both by the attempt number."""

    mem_mb: int = Field(4000, ge=100)
    runtime: int = Field(60, ge=1)
