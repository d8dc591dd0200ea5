"""Which Hugging Face MLLM families the analyses support, and the one-line refusal of the rest.

The analyses find a model's parts by structure (`lookup`), so they are not limited to a list;
what they need is that the image enters the language model as tokens of its input sequence
(the visual tokens every method addresses by position). A model whose language model reads the
image through cross-attention layers instead (Mllama, Llama-3.2-Vision) has no visual tokens:
restoring, ablating or ranking "visual tokens" has no meaning there, and its cross-attention
layers are not sites of `lookup.SITES`. Such models are refused, with the feature named.

`FAMILIES` names the families tested here (docs/families.md lists what was tested on each).
"""

from __future__ import annotations

from torch import nn

from mmtrace.models.lookup import locate

# model_type -> the family's name in messages and records
FAMILIES = {
    "llava": "LLaVA-1.5",
    "llava_next": "LLaVA-NeXT",
    "llava_onevision": "LLaVA-OneVision",
    "qwen2_vl": "Qwen2-VL",
    "qwen2_5_vl": "Qwen2.5-VL",
    "idefics3": "Idefics3",
    "smolvlm": "SmolVLM",
    "gemma3": "Gemma-3",
    "paligemma": "PaliGemma",  # PaliGemma 2 too: the same class, a Gemma 2 text model
    "mllama": "Mllama",
}


class UnsupportedModel(ValueError):
    """The model's architecture has a feature no analysis here supports (the message names
    the architecture and the feature)."""


def family(model: nn.Module) -> str:
    """The family's name, or the model's class name for one not in `FAMILIES`."""
    model_type = getattr(model.config, "model_type", None)
    return FAMILIES.get(model_type, type(model).__name__)


def refusal(model: nn.Module) -> str | None:
    """Why the analyses cannot run on `model` at all, or None."""
    try:
        blocks = locate(model)
    except ValueError as exc:
        return str(exc)
    for i, layer in enumerate(blocks.layers):
        crossing = [
            name for name, m in layer.named_children() if "cross" in type(m).__name__.lower()
        ]
        if crossing:
            return (
                f"{type(model).__name__} ({family(model)}): cross-attention layers (layer {i}): "
                "the image reaches the language model through cross-attention, not as visual "
                "tokens, which every analysis here addresses"
            )
    return None


def check(model: nn.Module) -> None:
    """Raise UnsupportedModel with `refusal`'s line if there is one."""
    why = refusal(model)
    if why is not None:
        raise UnsupportedModel(why)
