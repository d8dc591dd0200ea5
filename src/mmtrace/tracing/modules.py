"""Find the blocks tracing restores by structure, not by hard-coded attribute paths.

A decoder is the longest `nn.ModuleList` of the language model whose items each own an attention
child and an MLP child; this holds for Llama, Phi, Mistral, Qwen and the LLaVA wrappers around
them, whatever the attribute names (`model.layers`, `language_model.layers`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

KINDS = ("hidden", "mlp", "attn")


def _child_by_class(layer: nn.Module, needle: str) -> nn.Module | None:
    hits = [m for _, m in layer.named_children() if needle in type(m).__name__.lower()]
    return hits[0] if len(hits) == 1 else None


@dataclass
class DecoderBlocks:
    layers: nn.ModuleList

    def __len__(self) -> int:
        return len(self.layers)

    def module(self, kind: str, layer: int) -> nn.Module:
        """The module whose output is restored for `kind` at `layer`."""
        block = self.layers[layer]
        if kind == "hidden":
            return block
        found = _child_by_class(block, "attention" if kind == "attn" else "mlp")
        if found is None:
            raise ValueError(f"layer {layer} ({type(block).__name__}) has no unique {kind} child")
        return found


def _is_decoder_list(mod: nn.Module) -> bool:
    return (
        isinstance(mod, nn.ModuleList)
        and len(mod) > 0
        and all(
            _child_by_class(b, "attention") is not None and _child_by_class(b, "mlp") is not None
            for b in mod
        )
    )


def locate(model: nn.Module) -> DecoderBlocks:
    """The text decoder's blocks (a vision tower's encoder layers are excluded: CLIP and SigLIP
    encoder layers have attention and MLP too, so prefer the list under the language model)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    candidates = [m for _, m in decoder.named_modules() if _is_decoder_list(m)]
    if not candidates:
        raise ValueError(f"no decoder layers found in {type(model).__name__}")
    return DecoderBlocks(max(candidates, key=len))


PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector")


def projector(model: nn.Module) -> nn.Module:
    """The module mapping vision features to the language model's input space; its output rows
    are the visual tokens' embeddings, in the order the image tokens take in the prompt."""
    hits = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in PROJECTOR_NAMES]
    if len(hits) != 1:
        raise ValueError(
            f"{type(model).__name__}: expected one vision projector named one of "
            f"{list(PROJECTOR_NAMES)}, found {len(hits)}"
        )
    return hits[0]


OUTPUT_PROJECTION_NAMES = ("down_proj", "fc2", "c_proj", "dense_4h_to_h", "w2")


def output_projection(blocks: DecoderBlocks, layer: int) -> nn.Linear:
    """The MLP's output projection W at `layer` (Llama `down_proj`, Phi `fc2`): the matrix
    MultEdit rewrites. Its input is the key, its output (plus bias) the MLP's output."""
    mlp = blocks.module("mlp", layer)
    for name in OUTPUT_PROJECTION_NAMES:
        mod = getattr(mlp, name, None)
        if isinstance(mod, nn.Linear):
            return mod
    raise ValueError(
        f"layer {layer}: {type(mlp).__name__} has no output projection among "
        f"{list(OUTPUT_PROJECTION_NAMES)}"
    )
