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
from support import tiny_models
from support.tiny_checkpoints import (
    HIDDEN,
    N_VISUAL,
    VISION,
    WORDS,
    bunny_parts,
    bunny_tensors,
    word_tokenizer,
    write_bunny,
    write_llava_hf,
)
from torch import nn
from transformers import (
    SiglipVisionConfig,
)

from mmtrace.models import adapters
from mmtrace.models.loading import load, role_of
from mmtrace.models.lookup import locate, projector

# --- LLaVA-1.5 (llava-hf) and Vicuna: native transformers checkpoints ------------------------


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> tuple[Path, nn.Module]:
    out = tmp_path_factory.mktemp("llava-hf")
    model = tiny_models.llava("llama")
    write_llava_hf(model, out)
    return out, model


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
