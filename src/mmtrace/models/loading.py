"""Model access: the one place that loads checkpoints and turns prompts into model inputs.

Toy checkpoints are saved with `save_pretrained` and loaded here exactly as a real Hugging Face
checkpoint would be (safetensors only; remote code only if the model's config entry opts in).
"""

from __future__ import annotations

import inspect
import json
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

from mmtrace.models import adapters, formats

log = logging.getLogger(__name__)


class ModelLoadError(ValueError):
    """A checkpoint cannot be loaded as asked; the message names it and says what to do."""


class ImageError(ValueError):
    """An image cannot be read; the message names the file."""


def _looks_local(path: str) -> bool:
    """A path rather than a hub id ("owner/name"): the hub is never asked about a typo."""
    return (
        path.startswith((".", "/", "~"))
        or path.count("/") != 1
        or "\\" in path
        or Path(path).exists()
    )


def _check_local(path: str) -> None:
    """A local checkpoint folder exists and holds weights, before transformers reads it."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelLoadError(
            f"model folder not found ({path}): check the path (a Hugging Face id looks like "
            "owner/name)"
        )
    if not folder.is_dir():
        raise ModelLoadError(f"not a model folder ({path}): give the checkpoint's directory")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"no config.json in {path}: give a folder written by save_pretrained")
    formats.refuse_pickle(folder)


def _check_weights(path: str) -> None:
    if not any(Path(path).expanduser().glob("*.safetensors")):
        raise ModelLoadError(
            f"no .safetensors weights in {path}: give a folder written by save_pretrained "
            "(safetensors only)"
        )


def check_model(path: str) -> None:
    """A local checkpoint path exists and holds a config and safetensors weights (ModelLoadError
    naming it otherwise); a hub id ("owner/name" that is no local path) is left to the hub."""
    if _looks_local(path):
        _check_local(path)
        _check_weights(path)


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
        return self.encode_with_text(prompts, images)[0]

    def encode_with_text(
        self, prompts: list[str], images: list[Image.Image] | None = None, offsets: bool = False
    ) -> tuple[dict, list[str]]:
        """`encode`, and the text the tokenizer was given: the processor's (image placeholders
        expanded, special tokens added) for an MLLM, the prompts for an LM. With `offsets`,
        also "offset_mapping" (characters of that text per token; not a model input)."""
        extra = {"return_offsets_mapping": True} if offsets else {}
        if self.is_multimodal:
            if images is None or len(images) != len(prompts):
                raise ValueError("a multimodal model needs one image per prompt")
            seen = _TextRecorder(self.processor.tokenizer)
            self.processor.tokenizer = seen
            try:  # one image per prompt, nested: Gemma-3's processor reads a flat list as one
                enc = self.processor(
                    images=[[im] for im in images], text=prompts, return_tensors="pt",
                    padding=True, **extra,
                )  # fmt: skip
            finally:
                self.processor.tokenizer = seen.inner
            texts = seen.texts or list(prompts)
        else:
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, **extra)
            texts = list(prompts)
        enc = {k: v.to(self.device) for k, v in enc.items() if k not in NOT_MODEL_INPUTS}
        return enc, texts


# Processor outputs that are not model inputs: PaliGemma's training labels.
NOT_MODEL_INPUTS = ("labels",)


class _TextRecorder:
    """A tokenizer stand-in that records the text of its last call (a processor expands its
    image placeholders into that text before tokenising it) and forwards everything else."""

    def __init__(self, inner) -> None:
        self.__dict__.update(inner=inner, texts=None)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.inner, name, value)

    def __call__(self, text=None, *args, **kwargs):
        if text is not None:
            self.__dict__["texts"] = [text] if isinstance(text, str) else list(text)
        return self.inner(text, *args, **kwargs)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def role_of(path: str | Path, trust_remote_code: bool = False) -> str:
    """`mllm` for a checkpoint with a vision tower (e.g. LLaVA, Bunny), else `llm`."""
    raw = adapters.read_config_dict(path)
    if adapters.is_bunny(raw):
        return "mllm"
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return "mllm" if getattr(config, "vision_config", None) is not None else "llm"


def load(
    path: str | Path,
    role: str,
    name: str | None = None,
    dtype: str = "float32",
    device: str = "auto",
    trust_remote_code: bool = False,
    adapter: str = "auto",
    revision: str | None = None,
    local_files_only: bool = False,
    device_map: str | dict | None = None,
) -> LoadedModel:
    """Load a checkpoint directory or hub id as an MLLM (image-text-to-text) or a causal LM.
    `device_map` (e.g. "auto"; needs accelerate) is passed to `from_pretrained` instead of
    moving the model to `device`.

    `adapter` picks how: "native" through transformers' Auto classes (LLaVA-1.5, Vicuna, the toy
    models), "bunny" through the no-remote-code LLaVA wrapper of `adapters` (Bunny-v1.0-3B), "auto"
    by the checkpoint's model_type. Weights are safetensors only; pickle checkpoints are refused.
    """
    path = str(path)
    if role not in ("mllm", "llm"):
        raise ValueError(f"role must be 'mllm' or 'llm', not {role!r}")
    hub = dict(revision=revision, local_files_only=local_files_only)
    local = _looks_local(path)
    if local:
        _check_local(path)
    formats.refuse_pickle(path)
    raw = adapters.read_config_dict(path, **hub)
    chosen = adapters.resolve_adapter(adapter, raw, trust_remote_code)
    if local:
        _check_weights(path)
        actual = "mllm" if adapters.is_bunny(raw) or "vision_config" in raw else "llm"
        if actual != role:
            kind = "a multimodal" if actual == "mllm" else "a text-only"
            raise ModelLoadError(
                f"{path} is {kind} checkpoint ({actual}), not {role}: load it with role {actual!r}"
            )
    if chosen == "bunny":
        if role != "mllm":
            raise ValueError("a Bunny checkpoint is multimodal: load it with role 'mllm'")
        model, processor = adapters.load_bunny(path, dtype=DTYPES[dtype], **hub)
        tokenizer = processor.tokenizer
    else:
        remote = dict(trust_remote_code=trust_remote_code, **hub)
        kwargs = dict(dtype=DTYPES[dtype], use_safetensors=True, **remote)
        if device_map is not None:
            kwargs["device_map"] = device_map
        if role == "mllm":
            model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            processor = load_processor(path, **remote)
            tokenizer = processor.tokenizer
        else:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
            processor = None
            tokenizer = AutoTokenizer.from_pretrained(path, **remote)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if device_map is None:
        model.to(resolve_device(device))
    model.eval()
    log.info(
        "loaded %s (%s, %s, adapter %s) from %s",
        name or path,
        role,
        raw.get("model_type"),
        chosen,
        path,
    )
    return LoadedModel(name or path, model, tokenizer, processor, role)


def image_only(cls: type) -> type:
    """Processor class `cls` without its video processor (the analyses use images only):
    transformers' video processors need torchvision, which the lock does not hold, and a
    processor that takes one (Qwen2-VL, LLaVA-OneVision) cannot be built without it."""
    params = inspect.signature(cls.__init__).parameters
    if "video_processor" not in params:
        return cls

    # The class's own parameters less the video processor, as real parameters: saving reads
    # the signature, loading the code object's argument names.
    names = [
        n
        for n, p in params.items()
        if n not in ("self", "video_processor") and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    defaults = {
        n: (None if params[n].default is params[n].empty else params[n].default) for n in names
    }
    source = (
        f"def __init__(self, {', '.join(f'{n}=_defaults[{n!r}]' for n in names)}, **kwargs):\n"
        f"    _cls.__init__(self, {', '.join(f'{n}={n}' for n in names)}, "
        "video_processor=None, **kwargs)\n"
    )
    scope = {"_cls": cls, "_defaults": defaults}
    exec(source, scope)  # noqa: S102 - a fixed template over the class's own parameter names
    return type(cls.__name__, (cls,), {"__init__": scope["__init__"], "__module__": cls.__module__})


def _processor_config(path: str, **kwargs) -> dict:
    if Path(path).is_dir():
        file = Path(path) / "processor_config.json"
    else:
        from huggingface_hub import hf_hub_download

        hub = {k: kwargs[k] for k in ("revision", "local_files_only") if k in kwargs}
        file = Path(hf_hub_download(path, "processor_config.json", **hub))
    return json.loads(file.read_text()) if file.is_file() else {}


def load_processor(path: str, **kwargs) -> Any:
    """The checkpoint's processor (AutoProcessor); where only its video processor cannot be
    loaded (no torchvision), the same processor class without it (`image_only`)."""
    try:
        return AutoProcessor.from_pretrained(path, **kwargs)
    except (OSError, ImportError, ValueError) as exc:
        if "video" not in str(exc).lower():
            raise
        import transformers

        name = str(_processor_config(path, **kwargs).get("processor_class"))
        cls = getattr(transformers, name, None)
        if cls is None:
            raise
        log.info("%s: loading %s without its video processor (%s)", path, cls.__name__, exc)
        return image_only(cls).from_pretrained(path, **kwargs)


def load_image(path: str | Path) -> Image.Image:
    """An RGB image; ImageError naming the file if it is missing, not an image, truncated, or
    larger than PIL's decompression-bomb limit."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(
            f"image not found ({path})" if not path.exists() else f"not an image file ({path})"
        )
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large ({path}): {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot read the image ({path}): {exc}") from None
