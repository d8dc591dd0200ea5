"""Finding a model's parts by structure, not by hard-coded attribute paths.

A decoder is the longest `nn.ModuleList` of the language model whose items each own an attention
child and an MLP child; this holds for Llama, Phi, Mistral, Qwen and the LLaVA wrappers around
them, whatever the attribute names (`model.layers`, `language_model.layers`, ...).

The hook sites every method names (`SITES`), at decoder layer l and every token position:
- `hidden`: the decoder block's output, i.e. the residual stream after layer l (what ROME calls
  the hidden state; restoring it restores everything the layer and those before it wrote);
- `mlp`: the MLP's output at layer l, before it is added to the residual stream;
- `attn`: the self-attention block's output at layer l (after its output projection), before it
  is added to the residual stream.
In a Phi (parallel) block attention and MLP read the same normalised input and both outputs are
added to the residual stream together; the sites are the same modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

SITES = ("hidden", "mlp", "attn")


def _child_by_class(layer: nn.Module, needle: str) -> nn.Module | None:
    hits = [m for _, m in layer.named_children() if needle in type(m).__name__.lower()]
    return hits[0] if len(hits) == 1 else None


@dataclass
class DecoderBlocks:
    layers: nn.ModuleList

    def __len__(self) -> int:
        return len(self.layers)

    def module(self, kind: str, layer: int) -> nn.Module:
        """The module whose output is the site `kind` (see `SITES`) at `layer`."""
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


def parent_of(model: nn.Module, child: nn.Module) -> tuple[nn.Module, str]:
    """The module holding `child` as a direct attribute, and that attribute's name."""
    for mod in model.modules():
        for name, c in mod.named_children():
            if c is child:
                return mod, name
    raise ValueError(f"{type(child).__name__} has no parent module in {type(model).__name__}")


def embedding_scale(model: nn.Module) -> float:
    """The factor the input embedding module multiplies its table rows by (Gemma's sqrt(d),
    `embed_scale`; 1 for most models): the scale of what the language model reads."""
    scale = getattr(model.get_input_embeddings(), "embed_scale", None)
    return 1.0 if scale is None else float(scale)


# LLaVA's family, Gemma-3 and PaliGemma: multi_modal_projector; Bunny: mm_projector; Qwen2-VL
# and Qwen2.5-VL: the vision tower's final merger; Idefics3 and SmolVLM: connector
PROJECTOR_NAMES = ("multi_modal_projector", "mm_projector", "merger", "connector")


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


def _linear(parent: nn.Module, names: Sequence[str], what: str) -> nn.Linear:
    for name in names:
        mod = getattr(parent, name, None)
        if isinstance(mod, nn.Linear):
            return mod
    raise ValueError(f"{type(parent).__name__} has no {what} among {list(names)}")


OUTPUT_PROJECTION_NAMES = ("down_proj", "fc2", "c_proj", "dense_4h_to_h", "w2")


def output_projection(blocks: DecoderBlocks, layer: int) -> nn.Linear:
    """The MLP's output projection W at `layer` (Llama `down_proj`, Phi `fc2`): the matrix
    MultEdit rewrites. Its input is the key, its output (plus bias) the MLP's output."""
    try:
        return _linear(blocks.module("mlp", layer), OUTPUT_PROJECTION_NAMES, "output projection")
    except ValueError as exc:
        raise ValueError(f"layer {layer}: {exc}") from None


VALUE_NAMES = ("v_proj",)
ATTENTION_OUTPUT_NAMES = ("o_proj", "dense", "out_proj")


def value_projection(attn: nn.Module) -> nn.Linear:
    """The attention block's value projection W_V (all heads, as one nn.Linear)."""
    return _linear(attn, VALUE_NAMES, "value projection (Eq. 1 needs it as nn.Linear)")


def attention_output_projection(attn: nn.Module) -> nn.Linear:
    """The attention block's output projection W_O (all heads, as one nn.Linear)."""
    return _linear(attn, ATTENTION_OUTPUT_NAMES, "output projection (Eq. 1 needs it as nn.Linear)")
