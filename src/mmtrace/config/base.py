"""What every section shares: strict models (an unknown key is an error), paths and prompts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator


class Strict(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class Paths(Strict):
    data: str = "data/toy"
    results: str = "results"
    figures: str = "figures"
    tables: str = "paper_tables"
    logs: str = "logs"


class Prompts(Strict):
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
