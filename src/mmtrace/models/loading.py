"""Model access: the one place that loads checkpoints and turns prompts into model inputs.

Toy checkpoints are saved with `save_pretrained` and loaded here exactly as a real Hugging Face
checkpoint would be (safetensors only; remote code only if the model's config entry opts in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
)

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    name: str
    model: PreTrainedModel
    tokenizer: Any
    processor: Any | None  # None for text-only models
    role: str  # mllm | llm

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_multimodal(self) -> bool:
        return self.processor is not None

    def encode(self, prompts: list[str], images: list[Image.Image] | None = None) -> dict:
        """Tokenise a batch (right-padded); images are required for multimodal prompts."""
        if self.is_multimodal:
            if images is None or len(images) != len(prompts):
                raise ValueError("a multimodal model needs one image per prompt")
            enc = self.processor(images=images, text=prompts, return_tensors="pt", padding=True)
        else:
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True)
        return {k: v.to(self.device) for k, v in enc.items()}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def role_of(path: str | Path, trust_remote_code: bool = False) -> str:
    """`mllm` for a checkpoint with a vision tower (e.g. LLaVA), else `llm`."""
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return "mllm" if getattr(config, "vision_config", None) is not None else "llm"


def load(
    path: str | Path,
    role: str,
    name: str | None = None,
    dtype: str = "float32",
    device: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a checkpoint directory or hub id as an MLLM (image-text-to-text) or a causal LM."""
    path = str(path)
    kwargs = dict(dtype=DTYPES[dtype], trust_remote_code=trust_remote_code, use_safetensors=True)
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    if role == "mllm":
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        tokenizer = processor.tokenizer
    elif role == "llm":
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        processor = None
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    else:
        raise ValueError(f"role must be 'mllm' or 'llm', not {role!r}")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model.to(resolve_device(device))
    model.eval()
    log.info("loaded %s (%s, %s) from %s", name or path, role, config.model_type, path)
    return LoadedModel(name or path, model, tokenizer, processor, role)


def load_image(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"cannot read image {path}: {exc}") from exc
