"""The compiled controls' building blocks (`mmtrace.models.compiled`): the residual stream's
named blocks, one hand-set attention head, and the residual's scale."""

from __future__ import annotations

from transformers import LlavaForConditionalGeneration

HEAD_DIM = 128


class Layout:
    """Named blocks of the residual stream."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.blocks: dict[str, slice] = {}
        start = 0
        for name, n in sizes.items():
            self.blocks[name] = slice(start, start + n)
            start += n
        self.size = start

    def pad_to(self, multiple: int) -> None:
        """Add an unused block so the size is a multiple of `multiple`."""
        extra = -self.size % multiple
        self.blocks["unused"] = slice(self.size, self.size + extra)
        self.size += extra

    def __getitem__(self, name: str) -> slice:
        return self.blocks[name]

    def at(self, name: str, i: int = 0) -> int:
        return self.blocks[name].start + i


def scale_residual(model: LlavaForConditionalGeneration, scale: float) -> None:
    """Multiply every write into the language model's residual stream by `scale`: the token
    embeddings, the projector's output, and each layer's attention and MLP outputs. The LM head
    and every projection reading the residual sit behind an RMSNorm, so they need no change."""
    lm = model.model.language_model
    proj = model.model.multi_modal_projector.linear_2
    writes = [lm.embed_tokens.weight, proj.weight, proj.bias]
    for layer in lm.layers:
        writes += [layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight]
        writes += [
            m.bias for m in (layer.self_attn.o_proj, layer.mlp.down_proj) if m.bias is not None
        ]
    for w in writes:
        w.mul_(scale)


def set_head(attn, head: int, q: dict, k: dict, v: dict, lay_size: int, scale: float) -> None:
    """One attention head: `q`/`k` map residual dims to (QK dim, weight); `v` maps residual
    dims to (value dim, output dim); weights read normalised inputs (hence `scale`)."""
    base = head * HEAD_DIM
    for src, (dim, w) in q.items():
        attn.q_proj.weight[base + dim, src] = w * scale
    for src, (dim, w) in k.items():
        attn.k_proj.weight[base + dim, src] = w * scale
    for src, (dim, out) in v.items():
        attn.v_proj.weight[base + dim, src] = scale
        attn.o_proj.weight[out, base + dim] = 1.0
