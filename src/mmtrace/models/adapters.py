"""Adapters that load the paper's real checkpoints without remote code.

LLaVA-1.5 (`llava-hf/llava-1.5-7b-hf`) and Vicuna (`lmsys/vicuna-7b-v1.5`) are native transformers
architectures and load as they are ("native"). Bunny-v1.0-3B (`BAAI/Bunny-v1_0-3B`, model_type
"bunny-phi") ships only as remote code, so the "bunny" adapter rebuilds it as a transformers
`LlavaForConditionalGeneration` (SigLIP vision tower, 2-layer GELU projector, Phi-2 text model)
and maps its weights onto that. The tracing code then sees one model family, with the same
module layout (`model.language_model`, `model.vision_tower`, `model.multi_modal_projector`) as
LLaVA, and no code from the hub runs.

How Bunny-v1.0-3B is put together, read from BAAI-DCAI/Bunny on GitHub:

* bunny/model/language_model/bunny_phi.py: `BunnyPhiForCausalLM` holds `self.model`
  (`BunnyPhiModel` = Bunny's vendored Phi `PhiModel` + `BunnyMetaModel`) and `lm_head`.
  Note: that class builds `lm_head` *without* a bias, although Phi-2's own `PhiForCausalLM`
  (bunny/model/language_model/phi/modeling_phi.py) has one. This adapter therefore loads
  `lm_head.bias` whenever the checkpoint has it (into a biased head) and keeps a bias-free head
  when it has none; it never drops or invents a bias.
* bunny/model/language_model/phi/modeling_phi.py: `PhiModel` has `embed_tokens`,
  `layers.N.{input_layernorm, self_attn.{q_proj,k_proj,v_proj,dense}, mlp.{fc1,fc2}}` and
  `final_layernorm`, the names transformers' Phi uses.
* bunny/model/bunny_arch.py: `BunnyMetaModel` adds `vision_tower` (built from
  `config.mm_vision_tower`) and `mm_projector`; `encode_images` is projector(vision_tower(x)),
  and the features replace the image placeholder (index -200) in the embedded prompt.
* bunny/model/multimodal_encoder/siglip/siglip_encoder.py: `SiglipVisionTower.vision_tower` is a
  transformers `SiglipVisionModel`; features are `hidden_states[-2]` (select_layer = -2), i.e. the
  output of the penultimate encoder layer, before `post_layernorm`, all 729 patch tokens (SigLIP
  has no CLS token). The hub's remote code does the same another way: it deletes the last encoder
  layer and the pooling head, then takes `hidden_states[-1]`. Both variants are accepted here.
* bunny/model/multimodal_projector/builder.py: "mlp2x_gelu" is
  `nn.Sequential(Linear(mm_hidden, hidden), nn.GELU(), Linear(hidden, hidden))`, i.e. LLaVA's
  `LlavaMultiModalProjector` with `linear_1`, exact GELU, `linear_2`.

Hence the checkpoint-to-wrapper names (`BUNNY_RENAMES`; transformers 5's `SiglipVisionModel` has
no inner `vision_model` module any more, so that level of the name goes):

    model.vision_tower.vision_tower.vision_model.*  -> model.vision_tower.*
    model.mm_projector.0.*                          -> model.multi_modal_projector.linear_1.*
    model.mm_projector.2.*                          -> model.multi_modal_projector.linear_2.*
    model.embed_tokens.*                            -> model.language_model.embed_tokens.*
    model.layers.*                                  -> model.language_model.layers.*
    model.final_layernorm.*                         -> model.language_model.final_layernorm.*
    lm_head.*                                       -> lm_head.*

Images: Bunny's `SigLipImageProcessor` (hub remote code) resizes to 384x384 (bicubic), rescales by
1/255 and normalises with mean = std = 0.5; with `image_aspect_ratio: "pad"` in its config the
image is first padded to a square filled with the mean colour (127, 127, 127). transformers'
`LlavaImageProcessorPil(do_pad=True)` does exactly that padding (PIL backend, as Bunny), so it is
used with SigLIP's values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import (
    AutoTokenizer,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaImageProcessorPil,
    LlavaProcessor,
    PhiConfig,
    SiglipVisionConfig,
)
from transformers.image_utils import PILImageResampling
from transformers.initialization import no_init_weights
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from mmtrace.models import formats

ADAPTERS = ("auto", "native", "bunny")
IMAGE_TOKEN = "<image>"

# Bunny's "bunny" conversation template with one image, as in the BAAI/Bunny-v1_0-3B model card.
BUNNY_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions. "
    "USER: <image>\n{question} ASSISTANT:"
)

# Checkpoint prefix -> wrapper prefix; a name no rule covers is reported as unexpected.
BUNNY_RENAMES = (
    ("model.vision_tower.vision_tower.vision_model.", "model.vision_tower."),
    ("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "model.multi_modal_projector.linear_2."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.final_layernorm.", "model.language_model.final_layernorm."),
    ("lm_head.", "lm_head."),
)

# Bunny's config.json names only the vision tower (`mm_vision_tower`); its shape is SigLIP's own
# config. This one is google/siglip-so400m-patch14-384's vision config, used when that config is
# not on disk, so an offline snapshot of Bunny alone is enough.
KNOWN_VISION_TOWERS: dict[str, dict[str, Any]] = {
    "google/siglip-so400m-patch14-384": dict(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
        hidden_act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
    )
}

# The fields of Bunny's config.json that describe its Phi text model.
PHI_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "layer_norm_eps",
    "partial_rotary_factor",
    "rope_theta",
    "rope_scaling",
    "qk_layernorm",
    "resid_pdrop",
    "embd_pdrop",
    "attention_dropout",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

UNMAPPED = "<unmapped>"  # marks a checkpoint name no rename rule covers
SAFETENSORS_INDEX = "model.safetensors.index.json"


def read_config_dict(
    path: str | Path, revision: str | None = None, local_files_only: bool = False
) -> dict[str, Any]:
    """The raw config.json, read as JSON: its model_type may be unknown to transformers, whose
    config loaders would then warn, or prompt about remote code."""
    if Path(path).is_dir():
        file = Path(path) / "config.json"
        if not file.is_file():
            raise FileNotFoundError(f"{path} has no config.json")
    else:
        from huggingface_hub import hf_hub_download

        file = Path(
            hf_hub_download(
                str(path), "config.json", revision=revision, local_files_only=local_files_only
            )
        )
    return json.loads(file.read_text())


def is_bunny(config: dict[str, Any]) -> bool:
    return str(config.get("model_type", "")).startswith("bunny")


def resolve_adapter(adapter: str, config: dict[str, Any], trust_remote_code: bool) -> str:
    """The adapter to use, "native" or "bunny" ("auto" picks Bunny by its model_type). A model_type
    transformers does not know loads only through remote code, which must be an explicit opt-in."""
    if adapter not in ADAPTERS:
        raise ValueError(f"adapter must be one of {list(ADAPTERS)}, not {adapter!r}")
    model_type = str(config.get("model_type", ""))
    if adapter == "auto":
        adapter = "bunny" if is_bunny(config) else "native"
    if adapter == "bunny":
        if model_type != "bunny-phi":
            raise ValueError(
                f"the bunny adapter supports model_type 'bunny-phi' (Bunny-v1.0-3B), "
                f"not {model_type!r}"
            )
        return adapter
    if model_type not in CONFIG_MAPPING and not trust_remote_code:
        raise ValueError(
            f"model_type {model_type!r} is not a transformers architecture, so it loads only "
            "through the checkpoint's own (remote) code. Set `adapter: bunny` in the model's "
            "config entry if it is a Bunny checkpoint, or opt in with `trust_remote_code: true` "
            "there."
        )
    return adapter


def snapshot_dir(path: str | Path, revision: str | None, local_files_only: bool) -> Path:
    """A local directory: `path` itself, or the hub snapshot of repo id `path` (only the files
    `formats.ALLOW_PATTERNS` admits: safetensors and metadata)."""
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            str(path),
            revision=revision,
            local_files_only=local_files_only,
            allow_patterns=list(formats.ALLOW_PATTERNS),
        )
    )


def read_safetensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a single-file or sharded safetensors checkpoint."""
    formats.refuse_pickle(directory)
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        shards = sorted(p.name for p in directory.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"no .safetensors weights in {directory}")
    tensors: dict[str, torch.Tensor] = {}
    for shard in shards:
        tensors.update(load_file(str(directory / shard)))
    return tensors


def _rename(name: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    for old, new in rules:
        if name.startswith(old):
            return new + name[len(old) :]
    return None


def bunny_to_wrapper(name: str) -> str | None:
    """The wrapper's parameter name for a Bunny checkpoint name (None: no rule covers it)."""
    return _rename(name, BUNNY_RENAMES)


def wrapper_to_bunny(name: str) -> str:
    """The Bunny checkpoint name the wrapper's parameter `name` is loaded from."""
    if name.startswith(UNMAPPED):
        return name[len(UNMAPPED) :]
    return _rename(name, tuple((new, old) for old, new in BUNNY_RENAMES)) or name


def siglip_vision_config(
    tower: str, revision: str | None = None, local_files_only: bool = False
) -> SiglipVisionConfig:
    """The pretrained SigLIP tower's config: from a local directory `tower`, from the table of
    known towers, or from the hub (cache) as transformers would find it."""
    if Path(tower).is_dir():
        return SiglipVisionConfig.from_pretrained(tower)
    if tower in KNOWN_VISION_TOWERS:
        return SiglipVisionConfig(**KNOWN_VISION_TOWERS[tower])
    try:
        return SiglipVisionConfig.from_pretrained(
            tower, revision=revision, local_files_only=local_files_only
        )
    except OSError as exc:
        raise ValueError(
            f"cannot find the config of Bunny's vision tower {tower!r}: give a local directory "
            f"or one of {sorted(KNOWN_VISION_TOWERS)}"
        ) from exc


VISION_LAYER = re.compile(
    re.escape("model.vision_tower.vision_tower.vision_model.encoder.layers.") + r"(\d+)\."
)


def _vision_layers(tensors: dict[str, torch.Tensor]) -> int:
    """How many SigLIP encoder layers the checkpoint holds."""
    found = {int(m.group(1)) for n in tensors if (m := VISION_LAYER.match(n))}
    return max(found) + 1 if found else 0


def phi_config(config: dict[str, Any]) -> PhiConfig:
    """The Phi text model's config from Bunny's config.json."""
    return PhiConfig(
        **{k: config[k] for k in PHI_FIELDS if k in config and config[k] is not None},
        tie_word_embeddings=False,
    )


def bunny_llava_config(
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    image_token_id: int,
    revision: str | None = None,
    local_files_only: bool = False,
) -> LlavaConfig:
    """The LLaVA config equivalent to a Bunny-Phi config.json and its checkpoint.

    The checkpoint may hold the whole SigLIP encoder (GitHub code: features = hidden_states[-2]) or
    all but its last layer (hub code: last layer deleted, features = hidden_states[-1]); either way
    the features are the output of the pretrained tower's penultimate layer."""
    projector = config.get("mm_projector_type", "mlp2x_gelu")
    if projector != "mlp2x_gelu":
        raise ValueError(f"bunny adapter: projector {projector!r} is not supported (mlp2x_gelu)")
    vision = siglip_vision_config(config["mm_vision_tower"], revision, local_files_only)
    if config.get("mm_hidden_size", vision.hidden_size) != vision.hidden_size:
        raise ValueError(
            f"mm_hidden_size {config['mm_hidden_size']} != vision tower width {vision.hidden_size}"
        )
    depth = vision.num_hidden_layers
    stored = _vision_layers(tensors)
    if stored == depth:
        feature_layer = -2
    elif stored == depth - 1:
        feature_layer = -1
    else:
        raise ValueError(
            f"the checkpoint holds {stored} vision encoder layers; Bunny's tower has {depth} "
            f"(expected {depth}, or {depth - 1} with the last one removed)"
        )
    vision.num_hidden_layers = stored
    vision.vision_use_head = any(".vision_model.head." in n for n in tensors)
    return LlavaConfig(
        vision_config=vision,
        text_config=phi_config(config),
        image_token_index=image_token_id,
        image_seq_length=(vision.image_size // vision.patch_size) ** 2,
        vision_feature_layer=feature_layer,
        vision_feature_select_strategy="full",
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
        tie_word_embeddings=False,
    )


def check_names(expected: set[str], given: set[str]) -> None:
    """Fail unless the checkpoint fills every parameter and every tensor is used."""
    missing = sorted(wrapper_to_bunny(n) for n in expected - given)
    unexpected = sorted(wrapper_to_bunny(n) for n in given - expected)
    if missing or unexpected:
        raise ValueError(
            "Bunny checkpoint does not match the wrapper: "
            f"missing {missing or 'none'}; unexpected {unexpected or 'none'}"
        )


def _grow_embeddings(model: LlavaForConditionalGeneration, rows: int) -> None:
    """Give the added image token an (all-zero) input-embedding row. Its embedding is replaced by
    image features before the first layer, so the value never matters; the lm_head (and hence the
    logits) keeps the checkpoint's vocabulary."""
    old = model.get_input_embeddings()
    if rows <= old.num_embeddings:
        return
    new = nn.Embedding(rows, old.embedding_dim, dtype=old.weight.dtype, device=old.weight.device)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[: old.num_embeddings] = old.weight
    model.set_input_embeddings(new)


def bunny_processor(tokenizer: Any, vision: SiglipVisionConfig) -> LlavaProcessor:
    """LLaVA's processor with Bunny's image preprocessing; `tokenizer` must hold IMAGE_TOKEN."""
    size = vision.image_size
    image_processor = LlavaImageProcessorPil(
        do_pad=True,
        do_resize=True,
        size={"height": size, "width": size},
        do_center_crop=False,
        resample=PILImageResampling.BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,
        image_token=IMAGE_TOKEN,
    )


def load_bunny(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    local_files_only: bool = False,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Bunny-Phi as a transformers LLaVA model plus its processor, from safetensors only."""
    directory = snapshot_dir(path, revision, local_files_only)
    config = json.loads((directory / "config.json").read_text())
    resolve_adapter("bunny", config, trust_remote_code=False)
    tensors = read_safetensors(directory)

    # A config is passed so that AutoTokenizer does not try to load the unknown "bunny-phi" one.
    tokenizer = AutoTokenizer.from_pretrained(
        str(directory), config=phi_config(config), trust_remote_code=False
    )
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)

    lcfg = bunny_llava_config(config, tensors, image_token_id, revision, local_files_only)
    with no_init_weights():
        model = LlavaForConditionalGeneration._from_config(lcfg, dtype=dtype)
    if "lm_head.bias" in tensors:  # keep Phi-2's biased head (LLaVA's has no bias)
        text = lcfg.text_config
        model.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=True, dtype=dtype)

    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        target = bunny_to_wrapper(name)
        renamed[target if target is not None else UNMAPPED + name] = tensor
    check_names(set(model.state_dict()), set(renamed))
    model.load_state_dict(renamed, strict=True)
    del tensors, renamed

    _grow_embeddings(model, image_token_id + 1)
    model.eval()
    return model, bunny_processor(tokenizer, lcfg.vision_config)
