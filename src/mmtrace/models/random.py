"""Random-weight models of the real architectures, built from configuration alone (no download).

One factory for the tests' tiny models, the benchmarks' models at the 576-visual-token layout and
the real shapes of LLaVA-1.5-7B and Qwen2-VL-7B for GPU timings: the same transformers classes as
the checkpoints (`LlavaForConditionalGeneration` with a Llama or Phi text model,
`Qwen2VLForConditionalGeneration`, `LlamaForCausalLM`), so every analysis runs on them through
the same code path. Weights come from `torch.manual_seed(seed)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PhiConfig,
)

# LLaVA-1.5-7B: CLIP ViT-L/14 at 336 px (576 visual tokens) and Vicuna-7B v1.5 (docs/method.md §2).
LLAVA_1_5_7B: dict[str, Any] = dict(
    text=dict(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_layers=32,
        num_heads=32,
        max_positions=4096,
    ),
    vision=dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_layers=24,
        num_heads=16,
        image_size=336,
        patch_size=14,
    ),
)


def text_config(
    arch: Literal["llama", "phi"] = "llama",
    *,
    vocab_size: int = 64,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    max_positions: int = 64,
    initializer_range: float = 0.02,
    partial_rotary_factor: float = 0.5,
):
    """A Llama (grouped-query attention when `num_kv_heads` < `num_heads`) or Phi (parallel
    block, partial rotary) text configuration."""
    common = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_positions,
        initializer_range=initializer_range,
    )
    if arch == "llama":
        return LlamaConfig(num_key_value_heads=num_kv_heads or num_heads, **common)
    if arch == "phi":
        return PhiConfig(partial_rotary_factor=partial_rotary_factor, **common)
    raise ValueError(f"text architecture must be 'llama' or 'phi', not {arch!r}")


def vision_config(
    *,
    hidden_size: int = 16,
    intermediate_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    image_size: int = 16,
    patch_size: int = 8,
) -> CLIPVisionConfig:
    """A CLIP vision tower; (image_size / patch_size)^2 visual tokens."""
    return CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        image_size=image_size,
        patch_size=patch_size,
    )


def llava(
    arch: Literal["llama", "phi"] = "llama",
    *,
    text: dict[str, Any] | None = None,
    vision: dict[str, Any] | None = None,
    image_token: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    **extra: Any,
) -> LlavaForConditionalGeneration:
    """A random LLaVA in eval mode; `text` and `vision` are keyword arguments of `text_config`
    and `vision_config`, `extra` goes to `LlavaConfig`. With `device`, the weights are created
    there (LLaVA-1.5-7B's never exist in float32 on the CPU)."""
    vision_cfg = vision_config(**(vision or {}))
    n_visual = (vision_cfg.image_size // vision_cfg.patch_size) ** 2
    cfg = LlavaConfig(
        vision_config=vision_cfg,
        text_config=text_config(arch, **(text or {})),
        image_token_index=image_token,
        image_seq_length=n_visual,
        **extra,
    )
    torch.manual_seed(seed)
    if device is None:
        return LlavaForConditionalGeneration(cfg).to(dtype).eval()
    with torch.device(device):
        return LlavaForConditionalGeneration(cfg).to(dtype).eval()


# Qwen2-VL-7B(-Instruct): a Qwen2 text model with M-RoPE (rotary sections 16/24/24 of head_dim
# 128 for time, height and width) and a ViT whose 2x2 patch merger feeds it; ids as in its vocab.
QWEN2_VL_7B: dict[str, Any] = dict(
    text=dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
    ),
    vision=dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16, mlp_ratio=4),
    tokens=dict(
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
    ),
)


def qwen2_vl(
    *,
    text: dict[str, Any],
    vision: dict[str, Any],
    tokens: dict[str, int],
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
):
    """A random Qwen2-VL in eval mode (`text`, `vision`: keyword arguments of its text and vision
    configs; `tokens`: its special token ids); with `device`, created there."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    vision = dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, **vision)
    cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **tokens)
    torch.manual_seed(seed)
    if device is None:
        return Qwen2VLForConditionalGeneration(cfg).to(dtype).eval()
    with torch.device(device):
        return Qwen2VLForConditionalGeneration(cfg).to(dtype).eval()


def llama(*, seed: int = 0, dtype: torch.dtype = torch.float32, **text: Any) -> LlamaForCausalLM:
    """A random Llama language model in eval mode (keyword arguments of `text_config`)."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(text_config("llama", **text)).to(dtype).eval()


def random_copy(source: Path, seed: int, out: Path) -> dict:
    """A negative control: `source`'s architecture, processor and tokenizer with every weight
    drawn afresh (transformers' own initialisation, seeded), saved as safetensors."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    config = AutoConfig.from_pretrained(source)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(source).save_pretrained(out)
    return {"random_copy_of": str(source), "seed": seed}
