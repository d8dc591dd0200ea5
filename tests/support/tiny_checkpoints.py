"""Tiny stand-ins of the paper's real checkpoints, saved with each real checkpoint's module and
tensor names: LLaVA-1.5 as llava-hf writes it, and Bunny-v1.0-3B (remote-code "bunny-phi": a
Phi-2 LM, a SigLIP tower and an mlp2x_gelu projector). Shared by the adapter tests and the paper
world's end-to-end test."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import (
    CLIPImageProcessor,
    LlavaProcessor,
    PhiConfig,
    PhiForCausalLM,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from mmtrace.models import adapters

WORDS = ["<unk>", "<s>", "</s>", "<pad>"] + [f"w{i}" for i in range(36)]


def word_tokenizer(words: list[str], image_token: bool) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over `words` (ids in order), optionally with <image>."""
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    if image_token:
        fast.add_tokens([adapters.IMAGE_TOKEN], special_tokens=True)
    return fast


def write_llava_hf(model, out: Path) -> Path:
    """Save a tiny LLaVA (tests/tiny_models.llava) with a processor as llava-hf's repo has it."""
    # ids 0..4 ordinary, 5 = <image> (tiny_models.IMAGE_TOKEN), up to the 64-token vocabulary
    words = WORDS[:5] + [adapters.IMAGE_TOKEN] + [f"v{i}" for i in range(58)]
    tok = word_tokenizer(words, image_token=False)
    tok.add_tokens([adapters.IMAGE_TOKEN], special_tokens=True)  # already id 5: marks it special
    assert tok.convert_tokens_to_ids(adapters.IMAGE_TOKEN) == model.config.image_token_id
    vision = model.config.vision_config
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": vision.image_size},
            crop_size={"height": vision.image_size, "width": vision.image_size},
        ),
        tokenizer=tok,
        patch_size=vision.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    to_llava_hf_names(out / "model.safetensors")
    return out


def write_bunny_checkpoint(out: Path) -> Path:
    """A complete tiny Bunny repo: SigLIP tower config beside it, Bunny's config and tensors."""
    tower_dir = out.parent / (out.name + "-siglip")
    SiglipVisionConfig(**VISION).save_pretrained(tower_dir)
    return write_bunny(out, bunny_tensors(bunny_parts()), tower_dir)


def hf_cache_put(cache: Path, repo_id: str, src: Path, commit: str) -> Path:
    """Place a checkpoint directory in a Hugging Face hub cache (`HF_HUB_CACHE` layout) as the
    snapshot of `repo_id` at `commit`, with `refs/main` pointing at it, as a download would."""
    import shutil

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    shutil.copytree(src, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


def to_llava_hf_names(file: Path) -> None:
    """Give a saved tiny LLaVA the tensor names of llava-hf/llava-1.5-7b-hf (written by
    transformers 4). transformers 5 already saves the text model and projector that way
    (`language_model.model.layers.0...`, `multi_modal_projector.linear_1...`), but writes the
    CLIP tower without its `vision_model.` level."""
    renamed = {}
    for name, tensor in load_file(str(file)).items():
        if name.startswith("vision_tower."):
            name = "vision_tower.vision_model." + name.removeprefix("vision_tower.")
        renamed[name] = tensor
    for name in (
        "language_model.model.layers.0.mlp.down_proj.weight",
        "language_model.lm_head.weight",
        "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
        "vision_tower.vision_model.pre_layrnorm.weight",
        "multi_modal_projector.linear_1.weight",
    ):
        assert name in renamed, name
    save_file(renamed, str(file), metadata={"format": "pt"})


VISION = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=3,
    num_attention_heads=2,
    image_size=16,
    patch_size=8,
)
N_VISUAL = (VISION["image_size"] // VISION["patch_size"]) ** 2
HIDDEN = 40


def bunny_text_config(vocab_size: int) -> PhiConfig:
    """Bunny-v1.0-3B's Phi-2 text config (config.json) at tiny size."""
    return PhiConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,  # head_dim 10, rotary dim 0.4 * 10 = 4 (Phi-2: 80 -> 32)
        num_key_value_heads=4,
        hidden_act="gelu_new",
        max_position_embeddings=64,
        partial_rotary_factor=0.4,
        layer_norm_eps=1e-5,
        initializer_range=0.2,
        tie_word_embeddings=False,
    )


def bunny_config_json(tower: Path, vocab_size: int) -> dict:
    """The keys of BAAI/Bunny-v1_0-3B's config.json, with tiny sizes."""
    return {
        "_name_or_path": "BAAI/bunny-phi-2-siglip",
        "architectures": ["BunnyPhiForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_bunny_phi.BunnyPhiConfig",
            "AutoModelForCausalLM": "modeling_bunny_phi.BunnyPhiForCausalLM",
        },
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "embd_pdrop": 0.0,
        "eos_token_id": 2,
        "freeze_mm_mlp_adapter": False,
        "hidden_act": "gelu_new",
        "hidden_size": HIDDEN,
        "image_aspect_ratio": "pad",
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 64,
        "mm_hidden_size": VISION["hidden_size"],
        "mm_projector_lr": 2e-05,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_tower": str(tower),
        "model_type": "bunny-phi",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "pad_token_id": 2,
        "partial_rotary_factor": 0.4,
        "qk_layernorm": False,
        "resid_pdrop": 0.1,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "tokenizer_model_max_length": 64,
        "tokenizer_padding_side": "right",
        "torch_dtype": "float32",
        "transformers_version": "4.36.2",
        "tune_mm_mlp_adapter": False,
        "use_cache": True,
        "use_mm_proj": True,
        "vocab_size": vocab_size,
    }


def bunny_parts() -> dict[str, nn.Module]:
    """Random modules holding Bunny's pieces: Phi-2 LM (biased head), SigLIP tower, projector."""
    torch.manual_seed(0)
    vocab = len(WORDS)  # as in Bunny: vocab_size == len(tokenizer), no room for an image token
    lm = PhiForCausalLM(bunny_text_config(vocab)).eval()
    tower = SiglipVisionModel(SiglipVisionConfig(**VISION)).eval()
    proj = nn.Sequential(nn.Linear(16, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN))
    with torch.no_grad():  # make the biases big enough to matter in the comparisons
        lm.lm_head.bias.normal_(0, 1.0)
    return {"lm": lm, "tower": tower, "projector": proj}


def bunny_tensors(parts: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The state dict under BunnyPhiForCausalLM's names."""
    out = {k: v for k, v in parts["lm"].state_dict().items()}  # model.*, lm_head.*
    for k, v in parts["tower"].state_dict().items():  # saved by transformers 4: vision_model.*
        out[f"model.vision_tower.vision_tower.vision_model.{k}"] = v
    for k, v in parts["projector"].state_dict().items():
        out[f"model.mm_projector.{k}"] = v
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def write_bunny(out: Path, tensors: dict[str, torch.Tensor], tower_dir: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    vocab = len(WORDS)
    (out / "config.json").write_text(json.dumps(bunny_config_json(tower_dir, vocab), indent=2))
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    word_tokenizer(WORDS, image_token=False).save_pretrained(out)
    return out
