"""Train every toy model for a few steps on a tiny world and load it back through the same code
path as a real checkpoint."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mmtrace.config import Prompts
from mmtrace.dataset import load_questions
from mmtrace.models import curriculum
from mmtrace.models.loading import load, load_image
from mmtrace.models.scoring import first_answer_token, next_token_probs


def test_checkpoints_are_safetensors_with_logs(trained):
    for name, d in trained.items():
        if name == "tok":
            continue  # the tokenizer has no weights
        assert (d / "model.safetensors").exists() and not list(d.glob("*.bin"))
        assert (d / "training_log.json").exists()


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_mllm_loads_as_llava_and_keeps_text_weights(trained, tiny_world, arch):
    loaded = load(trained[f"mm-{arch}"], "mllm")
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
    lm = loaded.model.model.language_model
    assert type(lm).__name__ == ("LlamaModel" if arch == "llama" else "PhiModel")
    # the frozen vision tower is exactly the pre-trained one
    vision = load_file(trained["vision"] / "model.safetensors")
    tower = loaded.model.model.vision_tower.state_dict()
    for k, v in vision.items():
        assert torch.equal(tower[k], v), k
    rec = load_questions([tiny_world / "known.csv"])[0]
    probs = next_token_probs(
        loaded,
        [Prompts().mllm.replace("{question}", rec.question)],
        [load_image(tiny_world / rec.image_url)],
    )
    assert probs.shape == (1, len(loaded.tokenizer))
    assert torch.allclose(probs.sum(), torch.tensor(1.0), atol=1e-5)


def test_training_tokenisation_matches_the_processor(trained, tiny_world):
    """The trainer expands the image token itself; it must feed exactly what the processor
    feeds at evaluation time."""
    loaded = load(trained["mm-llama"], "mllm")
    records = load_questions([tiny_world / "movies.csv"])[:3]
    examples = curriculum.visual_examples(records, Prompts().mllm)
    n_img = loaded.model.config.image_seq_length
    batcher = curriculum.Batcher(loaded.tokenizer, examples, n_img)
    for i, ex in enumerate(examples):
        enc = loaded.encode([ex.prompt], [load_image(tiny_world / records[0].image_url)])
        ids = enc["input_ids"][0].tolist()
        assert batcher.ids[i][: batcher.n_prompt[i]] == ids
        assert ids.count(loaded.model.config.image_token_index) == n_img
        answer_first = first_answer_token(loaded.tokenizer, ex.prompt, ex.answer)
        assert batcher.ids[i][batcher.n_prompt[i]] == answer_first


def test_text_model_loads_as_causal_lm(trained):
    loaded = load(trained["phi"], "llm")
    assert type(loaded.model).__name__ == "PhiForCausalLM"
    assert loaded.model.lm_head.bias is not None  # Phi's biased lm_head, as in Phi-2
    assert not loaded.is_multimodal


def test_planted_vision_data_draws_the_labels_in_the_code_strip_only():
    """The planted tower learns the attributes from the bottom patch row: its renderings carry
    the labelled triple there (as the planted world's images do) and a distractor elsewhere."""
    import numpy as np

    from mmtrace.models.train import ATTRS, _random_renders
    from mmtrace.toyworld.planted import code_tile

    images, labels = _random_renders(6, 7, 48, planted_patch=12)
    natural, _ = _random_renders(6, 7, 48)
    for i, image in enumerate(images):
        attrs = {k: v[int(labels[k][i])] for k, v in ATTRS.items()}
        strip = np.asarray(image)[36:]
        assert all((strip[:, x : x + 12] == code_tile(attrs, 12)).all() for x in range(0, 48, 12))
        assert not (np.asarray(natural[i])[36:] == strip).all()


@pytest.mark.parametrize(
    ("features", "local"), [("patch_embeddings", True), ("penultimate", False)]
)
def test_patch_embedding_features_keep_each_visual_token_to_its_patch(features, local):
    """The planted control reads the patch embeddings: changing one patch's pixels
    changes that visual token only. LLaVA's penultimate layer (-2) spreads it to every token,
    which is why pixel locality is not token locality there."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaForConditionalGeneration

    from mmtrace.config import MLLMCfg
    from mmtrace.models import toy

    torch.manual_seed(0)
    vcfg = CLIPVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=24,
        patch_size=12,
    )
    tcfg = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    layer = toy.feature_layer(MLLMCfg(text_model="t", vision_features=features), vcfg)
    model = LlavaForConditionalGeneration(toy.llava_config(vcfg, tcfg, 63, layer)).eval()
    px = torch.randn(1, 3, 24, 24)
    changed = px.clone()
    changed[..., 12:, 12:] += 1.0  # the last patch (row-major index 3)
    with torch.no_grad():
        a, b = (
            torch.cat(
                list(model.model.get_image_features(pixel_values=x, return_dict=True).pooler_output)
            )
            for x in (px, changed)
        )  # fmt: skip  (the projected features, as mmtrace.models.encoding reads them)
    moved = (a - b).abs().amax(-1) > 1e-6
    assert moved.tolist() == ([False, False, False, True] if local else [True] * 4)


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_training_loss_from_cached_features_equals_the_full_forward(trained, tiny_world, arch):
    """The trainer's fast path (the frozen tower's features computed once, the textual examples
    stacked into the visual batch, EOS not fed) gives the loss of the plain computation: a full
    forward from pixels of each example with its EOS, cross-entropy at the answer tokens, the
    two parts weighed by their share."""
    from torch import nn

    from mmtrace.models.optimise import answer_loss
    from mmtrace.models.train import image_embeds, vision_features

    loaded = load(trained[f"mm-{arch}"], "mllm")
    model, tok = loaded.model, loaded.tokenizer
    records = load_questions([tiny_world / "known.csv"])[:4]
    visual = curriculum.Batcher(
        tok,
        curriculum.visual_examples(records, Prompts().mllm),
        model.config.image_seq_length,
    )
    textual = curriculum.Batcher(tok, curriculum.text_examples(records, Prompts().llm))
    idx, text_idx = [0, 2, 3], [1, 0]
    pixels = loaded.processor.image_processor(
        images=[load_image(tiny_world / records[0].image_url)] * len(idx), return_tensors="pt"
    )["pixel_values"]
    width = max(visual.width(idx), textual.width(text_idx))
    batch = curriculum.stack_batches(visual.batch(idx, width), textual.batch(text_idx, width))
    weight = len(text_idx) / (len(idx) + len(text_idx))
    with torch.no_grad():
        fast = answer_loss(
            model,
            batch,
            inputs_embeds=image_embeds(model, batch["input_ids"], vision_features(model, pixels)),
            second_weight=weight,
        )

        def plain(batcher, rows, px):
            nll = []
            for i, r in enumerate(rows):
                ids = torch.tensor([batcher.ids[r]])
                extra = {} if px is None else {"pixel_values": px[i : i + 1]}
                logits = model(input_ids=ids, **extra).logits[0]
                p = torch.arange(batcher.n_prompt[r] - 1, ids.shape[1] - 1)
                nll.append(nn.functional.cross_entropy(logits[p], ids[0, p + 1], reduction="none"))
            return torch.cat(nll).mean()

        expected = (1 - weight) * plain(visual, idx, pixels) + weight * plain(
            textual, text_idx, None
        )
    assert fast.item() > 1.0  # an untrained model: the loss is far above the tolerance
    assert torch.allclose(fast, expected, rtol=0, atol=1e-5), (fast, expected)
