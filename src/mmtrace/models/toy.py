"""Configurations of the toy models: the real architectures (transformers' Llama, Phi, CLIP and
LLaVA classes) at tiny sizes, so they load and run through exactly the real checkpoints' code."""

from __future__ import annotations

from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    PhiConfig,
    PreTrainedTokenizerBase,
)

from mmtrace.config import MLLMCfg, TextModelCfg, VisionCfg

MAX_POSITIONS = 256


def text_config(cfg: TextModelCfg, tok: PreTrainedTokenizerBase):
    common = dict(
        vocab_size=len(tok),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    if cfg.arch == "llama":
        return LlamaConfig(num_key_value_heads=cfg.num_kv_heads or cfg.num_heads, **common)
    if cfg.num_kv_heads not in (None, cfg.num_heads):
        raise ValueError("toy phi models use multi-head attention: leave num_kv_heads unset")
    # Phi-2's shape: parallel attention/MLP block, partial rotary embeddings, biased lm_head.
    return PhiConfig(
        partial_rotary_factor=0.5,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attention_dropout=0.0,
        **common,
    )


def vision_config(cfg: VisionCfg, image_size: int) -> CLIPVisionConfig:
    if image_size % cfg.patch_size:
        raise ValueError(
            f"toy_world.image_size ({image_size}) must be a multiple of the vision patch size "
            f"({cfg.patch_size})"
        )
    return CLIPVisionConfig(
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        image_size=image_size,
        patch_size=cfg.patch_size,
        projection_dim=cfg.hidden_size,
    )


def image_processor(image_size: int) -> CLIPImageProcessor:
    return CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
        do_convert_rgb=True,
    )


def num_image_tokens(vcfg: CLIPVisionConfig) -> int:
    """Patch tokens only: LLaVA's 'default' feature strategy drops the CLS token."""
    return (vcfg.image_size // vcfg.patch_size) ** 2


def feature_layer(cfg: MLLMCfg, vcfg: CLIPVisionConfig) -> int:
    """The vision hidden state an MLLM reads: -2 (penultimate) or the patch embeddings, indexed
    from the end (-(layers + 1)): transformers captures no hidden states for index 0."""
    if cfg.vision_features == "patch_embeddings":
        return -(vcfg.num_hidden_layers + 1)
    return -2


def llava_config(
    vcfg: CLIPVisionConfig, tcfg, image_token_id: int, vision_feature_layer: int = -2
) -> LlavaConfig:
    """LLaVA-1.5's wiring: the penultimate vision layer's patch features (`-2`), CLS dropped.
    The patch embeddings (`feature_layer`) keep each visual token to its own patch (the
    planted control's token-level truth)."""
    return LlavaConfig(
        vision_config=vcfg,
        text_config=tcfg,
        image_token_index=image_token_id,
        image_seq_length=num_image_tokens(vcfg),
        vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
