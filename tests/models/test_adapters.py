"""The checkpoint adapters on tiny stand-ins of the paper's three real checkpoints, each saved with
the real checkpoint's module and tensor names: LLaVA-1.5 (llava-hf), Vicuna (Llama) and
Bunny-v1.0-3B (remote-code "bunny-phi", loaded through the no-remote-code LLaVA wrapper)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
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
from mmtrace.models.loading import load, role_of
from mmtrace.tracing.modules import locate, projector
from tests import tiny_models

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


# --- LLaVA-1.5 (llava-hf) and Vicuna: native transformers checkpoints ------------------------


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> tuple[Path, nn.Module]:
    out = tmp_path_factory.mktemp("llava-hf")
    model = tiny_models.llava("llama")
    # ids 0..4 ordinary, 5 = <image> (tiny_models.IMAGE_TOKEN), up to the 64-token vocabulary
    words = WORDS[:5] + [adapters.IMAGE_TOKEN] + [f"v{i}" for i in range(58)]
    tok = word_tokenizer(words, image_token=False)
    tok.add_tokens([adapters.IMAGE_TOKEN], special_tokens=True)  # already id 5: marks it special
    assert tok.convert_tokens_to_ids(adapters.IMAGE_TOKEN) == tiny_models.IMAGE_TOKEN
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
    return out, model


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


@pytest.fixture(scope="module")
def vicuna_dir(tmp_path_factory) -> tuple[Path, nn.Module]:
    out = tmp_path_factory.mktemp("vicuna")
    model = tiny_models.llama()
    model.save_pretrained(out)
    word_tokenizer(WORDS, image_token=False).save_pretrained(out)
    return out, model


def test_llava_hf_loads_natively_with_same_logits(llava_dir):
    path, ref = llava_dir
    lm = load(path, "mllm", device="cpu", adapter="native")
    assert type(lm.model).__name__ == "LlavaForConditionalGeneration"
    assert lm.is_multimodal
    clean, _, _ = tiny_models.inputs(multimodal=True)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(**clean).logits, ref(**clean).logits)
    # "auto" picks the same native path
    assert type(load(path, "mllm", device="cpu").model) is type(lm.model)


def test_vicuna_loads_natively_with_same_logits(vicuna_dir):
    path, ref = vicuna_dir
    lm = load(path, "llm", device="cpu", adapter="native")
    assert type(lm.model).__name__ == "LlamaForCausalLM"
    clean, _, _ = tiny_models.inputs(multimodal=False)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(**clean).logits, ref(**clean).logits)
    assert role_of(path) == "llm"


def test_pickle_only_checkpoint_is_refused(vicuna_dir, tmp_path):
    path, model = vicuna_dir
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    for adapter in ("native", "auto"):
        with pytest.raises(ValueError, match=r"pickle.*pytorch_model\.bin"):
            load(tmp_path, "llm", device="cpu", adapter=adapter)


# --- Bunny-v1.0-3B: remote-code bunny-phi through the LLaVA wrapper --------------------------

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


@pytest.fixture(scope="module")
def bunny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bunny")
    tower_dir = root / "siglip"
    SiglipVisionConfig(**VISION).save_pretrained(tower_dir)
    parts = bunny_parts()
    tensors = bunny_tensors(parts)
    path = write_bunny(root / "ckpt", tensors, tower_dir)
    return {"path": path, "parts": parts, "tensors": tensors, "tower_dir": tower_dir}


def test_bunny_weight_names_all_map(bunny):
    for name in bunny["tensors"]:
        target = adapters.bunny_to_wrapper(name)
        assert target is not None, name
        assert adapters.wrapper_to_bunny(target) == name
    assert adapters.bunny_to_wrapper("model.mm_projector.2.weight") == (
        "model.multi_modal_projector.linear_2.weight"
    )
    assert adapters.bunny_to_wrapper("model.layers.0.self_attn.dense.weight") == (
        "model.language_model.layers.0.self_attn.dense.weight"
    )


def test_bunny_loads_every_weight(bunny):
    lm = load(bunny["path"], "mllm", device="cpu", adapter="bunny")
    model = lm.model
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    params = dict(model.named_parameters())
    for name, tensor in bunny["tensors"].items():
        target = params[adapters.bunny_to_wrapper(name)]
        if name == "model.embed_tokens.weight":  # grown by one zero row for <image>
            torch.testing.assert_close(target[: tensor.shape[0]], tensor, rtol=0, atol=0)
        else:
            torch.testing.assert_close(target, tensor, rtol=0, atol=0)
    assert len(params) == len(bunny["tensors"])
    cfg = model.config
    assert cfg.vision_feature_select_strategy == "full"
    assert cfg.vision_feature_layer == -2  # the full tower is stored: penultimate layer
    assert cfg.image_token_id == lm.tokenizer.convert_tokens_to_ids(adapters.IMAGE_TOKEN)
    assert cfg.image_token_id == len(WORDS)  # a real added token, past Bunny's vocabulary
    assert model.lm_head.weight.shape[0] == len(WORDS)  # logits keep the checkpoint vocabulary


def test_bunny_text_path_matches_phi_reference(bunny):
    lm = load(bunny["path"], "mllm", device="cpu", adapter="bunny")
    ref = bunny["parts"]["lm"]  # transformers PhiForCausalLM, biased lm_head
    ids = torch.tensor([[1, 7, 8, 9, 10, 11, 12]])
    with torch.no_grad():
        torch.testing.assert_close(lm.model(input_ids=ids).logits, ref(input_ids=ids).logits)


def reference_multimodal_logits(parts: dict, input_ids: torch.Tensor, pixels: torch.Tensor):
    """Bunny's own recipe from the raw modules: SigLIP hidden_states[-2], projector, spliced
    into the embedded prompt where the image placeholder is."""
    feats = parts["tower"](pixels, output_hidden_states=True).hidden_states[-2]
    visual = parts["projector"](feats)[0]
    lm = parts["lm"]
    image = input_ids[0] == len(WORDS)
    text_ids = input_ids[0].clone()
    text_ids[image] = 0
    embeds = lm.model.embed_tokens(text_ids)
    embeds[image] = visual
    return lm(inputs_embeds=embeds[None]).logits


def test_bunny_multimodal_forward_matches_reference(bunny):
    lm = load(bunny["path"], "mllm", device="cpu", adapter="bunny")
    image = Image.new("RGB", (24, 16), (200, 30, 90))  # not square: padded like Bunny
    enc = lm.encode(["w1 <image> w2 w3"], images=[image])
    n_image = int((enc["input_ids"] == lm.model.config.image_token_id).sum())
    assert n_image == N_VISUAL == lm.model.config.image_seq_length
    assert enc["pixel_values"].shape == (1, 3, VISION["image_size"], VISION["image_size"])
    with torch.no_grad():
        got = lm.model(**enc).logits
        want = reference_multimodal_logits(bunny["parts"], enc["input_ids"], enc["pixel_values"])
        torch.testing.assert_close(got, want)
        out = projector(lm.model)(
            lm.model.model.vision_tower(
                enc["pixel_values"], output_hidden_states=True
            ).hidden_states[-2]
        )
    assert out.shape == (1, N_VISUAL, HIDDEN)


def test_bunny_padding_to_square_uses_mean_colour(bunny):
    lm = load(bunny["path"], "mllm", device="cpu", adapter="bunny")
    wide = Image.new("RGB", (32, 16), (255, 255, 255))
    px = lm.processor.image_processor(wide, return_tensors="pt")["pixel_values"][0]
    # top and bottom quarter are padding of colour 127 -> (127/255 - 0.5) / 0.5
    assert px[:, 0, :].allclose(torch.full_like(px[:, 0, :], (127 / 255 - 0.5) / 0.5), atol=1e-2)
    assert px[:, 8, :].allclose(torch.ones_like(px[:, 8, :]), atol=1e-2)


def test_bunny_lm_head_bias_is_used(bunny):
    lm = load(bunny["path"], "mllm", device="cpu", adapter="bunny")
    assert lm.model.lm_head.bias is not None
    ids = torch.tensor([[1, 7, 8, 9]])
    with torch.no_grad():
        before = lm.model(input_ids=ids).logits
        lm.model.lm_head.bias.zero_()
        after = lm.model(input_ids=ids).logits
    assert not torch.allclose(before, after)
    torch.testing.assert_close(before - after, bunny["tensors"]["lm_head.bias"].expand_as(before))


def test_bunny_without_lm_head_bias_keeps_a_bias_free_head(bunny, tmp_path):
    tensors = {k: v for k, v in bunny["tensors"].items() if k != "lm_head.bias"}
    path = write_bunny(tmp_path / "ckpt", tensors, bunny["tower_dir"])
    lm = load(path, "mllm", device="cpu", adapter="bunny")
    assert lm.model.lm_head.bias is None


def test_bunny_with_last_vision_layer_removed(bunny, tmp_path):
    """The hub code's layout: last SigLIP layer and head deleted, features = hidden_states[-1]."""
    drop = ("encoder.layers.2.", "vision_model.head.")
    tensors = {k: v for k, v in bunny["tensors"].items() if not any(d in k for d in drop)}
    path = write_bunny(tmp_path / "ckpt", tensors, bunny["tower_dir"])
    lm = load(path, "mllm", device="cpu", adapter="bunny")
    assert lm.model.config.vision_feature_layer == -1
    assert lm.model.config.vision_config.num_hidden_layers == 2
    enc = lm.encode(["w1 <image> w2"], images=[Image.new("RGB", (16, 16), (10, 200, 30))])
    with torch.no_grad():
        got = lm.model(**enc).logits
        want = reference_multimodal_logits(bunny["parts"], enc["input_ids"], enc["pixel_values"])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "change, named",
    [
        ("extra", "model.extra_module.weight"),
        ("extra", "model.layers.7.mlp.fc1.weight"),
        ("missing", "model.layers.1.mlp.fc2.bias"),
        ("missing", "model.mm_projector.0.weight"),
    ],
)
def test_bunny_checkpoint_mismatch_fails_naming_the_tensor(bunny, tmp_path, change, named):
    tensors = dict(bunny["tensors"])
    if change == "extra":
        tensors[named] = torch.zeros(2, 2)
    else:
        del tensors[named]
    path = write_bunny(tmp_path / "ckpt", tensors, bunny["tower_dir"])
    kind = "unexpected" if change == "extra" else "missing"
    with pytest.raises(ValueError, match=rf"{kind} \[[^\]]*'{re.escape(named)}'"):
        load(path, "mllm", device="cpu", adapter="bunny")


def test_auto_picks_bunny_from_model_type(bunny):
    lm = load(bunny["path"], "mllm", device="cpu")  # adapter="auto"
    assert type(lm.model).__name__ == "LlavaForConditionalGeneration"
    assert lm.model.config.text_config.model_type == "phi"
    assert role_of(bunny["path"]) == "mllm"
    with pytest.raises(ValueError, match="multimodal"):
        load(bunny["path"], "llm", device="cpu")


def test_unknown_model_type_needs_an_adapter_or_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mystery-lm"}))
    for adapter in ("auto", "native"):
        with pytest.raises(ValueError, match=r"adapter: bunny.*trust_remote_code"):
            load(tmp_path, "mllm", device="cpu", adapter=adapter)
    with pytest.raises(ValueError, match="bunny-phi"):
        load(tmp_path, "mllm", device="cpu", adapter="bunny")
    with pytest.raises(ValueError, match="adapter must be one of"):
        load(tmp_path, "mllm", device="cpu", adapter="remote")


def test_known_vision_tower_gives_729_visual_tokens():
    cfg = adapters.siglip_vision_config("google/siglip-so400m-patch14-384")
    assert (cfg.image_size // cfg.patch_size) ** 2 == 729
    assert cfg.hidden_size == 1152 and cfg.num_hidden_layers == 27


def test_bunny_prompt_has_question_and_image():
    text = adapters.BUNNY_PROMPT.format(question="What is this?")
    assert text.endswith("USER: <image>\nWhat is this? ASSISTANT:")
    assert text.startswith(
        "A chat between a curious user and an artificial intelligence assistant."
    )


def test_locate_finds_blocks_of_all_three(llava_dir, vicuna_dir, bunny):
    cases = [
        (load(llava_dir[0], "mllm", device="cpu"), "LlamaDecoderLayer", tiny_models.N_LAYERS),
        (load(vicuna_dir[0], "llm", device="cpu"), "LlamaDecoderLayer", tiny_models.N_LAYERS),
        (load(bunny["path"], "mllm", device="cpu"), "PhiDecoderLayer", 2),
    ]
    for lm, layer_class, n_layers in cases:
        blocks = locate(lm.model)
        assert len(blocks) == n_layers
        assert type(blocks.layers[0]).__name__ == layer_class
        assert "Attention" in type(blocks.module("attn", 0)).__name__
        assert "MLP" in type(blocks.module("mlp", n_layers - 1)).__name__
        if lm.is_multimodal:
            assert isinstance(projector(lm.model), nn.Module)
