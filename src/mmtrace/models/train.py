"""Training the toy models the way the real ones were trained.

1. a BPE tokenizer on the world's text;
2. the vision tower on attribute recognition of random renderings (the stand-in for CLIP
   pre-training), then frozen;
3. each text model on the textual facts (the stand-in for Vicuna / Phi-2 pre-training);
4. each MLLM from its text model: stage 1 trains the projector alone to name the entity in an
   image (feature alignment), stage 2 trains projector and language model on the visual questions
   with a share of textual facts mixed in (visual instruction tuning).

Losses are computed at answer tokens only, from hidden states gathered there, which is the same
objective as masked labels but skips the vocabulary projection at every other position.
"""

from __future__ import annotations

import itertools
import json
import logging
import platform
import random
import time
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from torch import nn
from transformers import (
    AutoTokenizer,
    CLIPVisionModel,
    LlamaForCausalLM,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PhiForCausalLM,
)

from mmtrace import numerics
from mmtrace.config import MLLMCfg, TextModelCfg, VisionCfg
from mmtrace.dataset import QuestionRecord
from mmtrace.io import write_json
from mmtrace.models import toy
from mmtrace.models.curriculum import (
    Batcher,
    index_stream,
    naming_examples,
    stack_batches,
    text_examples,
    tokenizer_corpus,
    visual_examples,
)
from mmtrace.models.optimise import answer_loss, run_steps
from mmtrace.models.tokenizer import train_bpe
from mmtrace.prompts import answer_continuation
from mmtrace.seeding import derive, seed_everything
from mmtrace.toyworld.images import render
from mmtrace.toyworld.planted import render_planted
from mmtrace.toyworld.vocab import BACKGROUNDS, COLORS, SHAPES

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
    }


def _environment() -> dict:
    """The pins, the capability torch ran and the CPU (`mmtrace.numerics`): what decides
    whether a retraining elsewhere can give the same bits."""
    info = numerics.describe()
    return {k: info[k] for k in ("pins", "torch_cpu_capability", "torch_threads", "cpu")}


def train_tokenizer(records, entities, prompts, vocab_size: int, out_dir: Path):
    tok = train_bpe(tokenizer_corpus(records, entities, prompts), vocab_size)
    tok.save_pretrained(out_dir)
    firsts: dict[int, set[str]] = {}
    for r in records:
        for a in r.answers:
            firsts.setdefault(
                tok(answer_continuation(a), add_special_tokens=False)["input_ids"][0], set()
            ).add(a.split()[0])
    clashes = {tok.convert_ids_to_tokens(t): sorted(w) for t, w in firsts.items() if len(w) > 1}
    log.info(
        "tokenizer: %d tokens; answers whose different first words share a first token: %s",
        len(tok),
        clashes or "none",
    )
    return tok


def _log_json(out_dir: Path, info: dict) -> None:
    write_json(
        out_dir / "training_log.json",
        {**info, "versions": versions(), "environment": _environment()},
    )


# ----------------------------------------------------------------------------- vision
ATTRS = {"shape": SHAPES, "color": sorted(COLORS), "background": BACKGROUNDS}


class AttributeHeads(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, len(v)) for k, v in ATTRS.items()})

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: h(feats) for k, h in self.heads.items()}


def _random_renders(n: int, seed: int, size: int, planted_patch: int | None = None):
    """n renderings of random attribute triples and their labels; with `planted_patch`, planted
    renderings (the triple drawn as the code strip, a random other triple as the distractor)."""
    rng = random.Random(seed)
    images, labels = [], {k: [] for k in ATTRS}
    for i in range(n):
        attrs = {k: rng.choice(v) for k, v in ATTRS.items()}
        if planted_patch is None:
            images.append(render(attrs, derive(seed, "vision", i), size))
        else:
            distractor = {k: rng.choice(v) for k, v in ATTRS.items()}
            images.append(
                render_planted(attrs, distractor, derive(seed, "vision", i), size, planted_patch)
            )
        for k, v in ATTRS.items():
            labels[k].append(v.index(attrs[k]))
    return images, {k: torch.tensor(v) for k, v in labels.items()}


def train_vision(
    cfg: VisionCfg, image_size: int, seed: int, out_dir: Path, planted: bool = False
) -> dict:
    """Pre-train the CLIP vision tower to recognise shape, colour and background from the patch
    features LLaVA reads (penultimate layer, CLS dropped). `planted`: on planted renderings,
    for the MLLM trained on the planted world (a tower pre-trained on natural renderings does
    not read the code strip, and LLaVA keeps its tower frozen: measured, a toy-llava trained on
    the planted world over the natural tower answered 12-29% after 1500 steps)."""
    seed_everything(derive(seed, "vision-init"))
    vcfg = toy.vision_config(cfg, image_size)
    model = CLIPVisionModel(vcfg)
    heads = AttributeHeads(cfg.hidden_size)
    processor = toy.image_processor(image_size)
    n_images = min(cfg.steps * cfg.batch_size, 8000)
    data_seed = derive(seed, "vision-data", "planted") if planted else derive(seed, "vision-data")
    patch = cfg.patch_size if planted else None
    images, labels = _random_renders(n_images, data_seed, image_size, patch)
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    gen = torch.Generator().manual_seed(derive(seed, "vision-order"))
    stream = index_stream(n_images, cfg.batch_size, gen)

    def features(px: torch.Tensor) -> torch.Tensor:
        hs = model(pixel_values=px, output_hidden_states=True).hidden_states[-2]
        return hs[:, 1:].mean(dim=1)

    def step(_: int) -> torch.Tensor:
        idx = next(stream)
        logits = heads(features(pixels[idx]))
        return sum(nn.functional.cross_entropy(logits[k], labels[k][idx]) for k in ATTRS)

    params = list(model.parameters()) + list(heads.parameters())
    t0 = time.time()
    losses = run_steps(step, params, cfg.steps, cfg.lr, 50, "vision")
    # held-out check on fresh renderings
    test_images, test_labels = _random_renders(512, derive(seed, "vision-test"), image_size, patch)
    with torch.no_grad():
        px = processor(images=test_images, return_tensors="pt")["pixel_values"]
        logits = heads(features(px))
    acc = {k: float((logits[k].argmax(-1) == test_labels[k]).float().mean()) for k in ATTRS}
    log.info("vision tower attribute accuracy on fresh renderings: %s", acc)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    info = {
        "attribute_accuracy": acc,
        "losses": losses,
        "seconds": time.time() - t0,
        "seed": seed,
        "config": cfg.model_dump(),
    }
    _log_json(out_dir, info)
    return info


# ----------------------------------------------------------------------------- text models
def train_text_model(
    cfg: TextModelCfg,
    records: list[QuestionRecord],
    template: str,
    tokenizer_dir: Path,
    seed: int,
    name: str,
    out_dir: Path,
) -> dict:
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    seed_everything(derive(seed, name, "init"))
    cls = LlamaForCausalLM if cfg.arch == "llama" else PhiForCausalLM
    model = cls(toy.text_config(cfg, tok))
    model.train()
    batcher = Batcher(tok, text_examples(records, template))
    gen = torch.Generator().manual_seed(derive(seed, name, "order"))
    stream = index_stream(len(batcher), cfg.batch_size, gen)
    log.info(
        "%s: %d parameters, %d training examples",
        name,
        sum(p.numel() for p in model.parameters()),
        len(batcher),
    )
    t0 = time.time()
    losses = run_steps(
        lambda _: answer_loss(model, batcher.batch(next(stream))),
        list(model.parameters()),
        cfg.steps,
        cfg.lr,
        cfg.warmup,
        name,
    )
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    info = {
        "name": name,
        "losses": losses,
        "seconds": time.time() - t0,
        "seed": seed,
        "n_examples": len(batcher),
        "config": cfg.model_dump(),
    }
    _log_json(out_dir, info)
    return info


# ----------------------------------------------------------------------------- MLLMs
class ImageBank:
    """The training renderings of every entity, pre-processed once. While the vision tower is
    frozen (LLaVA's stage 2, `vision_lr: 0`) its features are constant, so they are computed
    once too and each step runs only the projector and the language model."""

    def __init__(self, data_dir: Path, entities: list[dict], processor, model=None):
        from mmtrace.models.loading import load_image

        self.slots: dict[str, list[int]] = {}
        images = []
        for e in entities:
            self.slots[e["id"]] = []
            for rel in e["train_images"]:
                self.slots[e["id"]].append(len(images))
                images.append(load_image(data_dir / rel))
        self.pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        self.features = None if model is None else vision_features(model, self.pixels)

    def draw(self, entity_ids: list[str], rng: random.Random) -> list[int]:
        """One random rendering (its index in the bank) of each entity."""
        return [rng.choice(self.slots[e]) for e in entity_ids]


def vision_features(model: LlavaForConditionalGeneration, pixels: torch.Tensor) -> torch.Tensor:
    """What LLaVA's projector reads from the vision tower (its feature layer, CLS dropped by the
    select strategy), from the model's own `get_image_features` with the projector set aside."""
    projector = model.model.multi_modal_projector
    model.model.multi_modal_projector = nn.Identity()
    try:
        with torch.no_grad():
            out = [model.model.get_image_features(pixel_values=px) for px in pixels.split(256)]
            parts = [torch.stack(list(o.pooler_output)) for o in out]
    finally:
        model.model.multi_modal_projector = projector
    return torch.cat(parts)


def image_embeds(
    model: LlavaForConditionalGeneration, input_ids: torch.Tensor, features: torch.Tensor
) -> torch.Tensor:
    """The language model's input embeddings with the projected image features at the image
    tokens: what LLaVA's forward builds from pixels, from cached vision features."""
    embeds = model.get_input_embeddings()(input_ids)
    image = model.model.multi_modal_projector(features).to(embeds.dtype)
    mask = model.model.get_placeholder_mask(input_ids, inputs_embeds=embeds, image_features=image)
    return embeds.masked_scatter(mask, image)


def train_mllm(
    cfg: MLLMCfg,
    records: list[QuestionRecord],
    entities: list[dict],
    prompts,
    data_dir: Path,
    vision_dir: Path,
    text_dir: Path,
    seed: int,
    name: str,
    out_dir: Path,
) -> dict:
    tok = AutoTokenizer.from_pretrained(text_dir)
    text_model = transformers.AutoModelForCausalLM.from_pretrained(text_dir, use_safetensors=True)
    vision = CLIPVisionModel.from_pretrained(vision_dir, use_safetensors=True)
    image_token_id = tok.convert_tokens_to_ids(tok.image_token)
    # the parts are named by what they are, not by the folder they were read from, so a
    # checkpoint retrained elsewhere (results/retrained/) can be byte-identical to this one
    text_model.config._name_or_path = cfg.text_model
    vision.config._name_or_path = Path(vision_dir).name
    lcfg = toy.llava_config(
        vision.config, text_model.config, image_token_id, toy.feature_layer(cfg, vision.config)
    )
    seed_everything(derive(seed, name, "init"))
    model = LlavaForConditionalGeneration(lcfg)
    model.model.vision_tower.load_state_dict(vision.state_dict())
    model.model.language_model.load_state_dict(text_model.model.state_dict())
    model.lm_head.load_state_dict({"weight": text_model.lm_head.weight.data})
    if getattr(text_model.lm_head, "bias", None) is not None:
        log.info(
            "%s: LLaVA's lm_head has no bias; the text model's lm_head bias is dropped "
            "and stage 2 adapts to its absence",
            name,
        )
    del text_model, vision
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)

    processor = LlavaProcessor(
        image_processor=toy.image_processor(lcfg.vision_config.image_size),
        tokenizer=tok,
        patch_size=lcfg.vision_config.patch_size,
        vision_feature_select_strategy=lcfg.vision_feature_select_strategy,
        num_additional_image_tokens=1,
    )
    n_img = toy.num_image_tokens(lcfg.vision_config)
    train_entities = [e for e in entities if not e["held_out"]]
    frozen = cfg.vision_lr <= 0
    bank = ImageBank(data_dir, train_entities, processor.image_processor, model if frozen else None)
    rng = random.Random(derive(seed, name, "images"))
    gen = torch.Generator().manual_seed(derive(seed, name, "order"))
    t0 = time.time()

    def mm_loss(batcher: Batcher, idx: list[int], text_idx: list[int] | None = None):
        """The visual examples' loss (with pixels, or with the frozen tower's cached features),
        the textual ones (`text_idx`) stacked into the same forward, weighed by their share."""
        weight = 0.0
        if text_idx:
            width = max(batcher.width(idx), textual.width(text_idx))
            batch = stack_batches(batcher.batch(idx, width), textual.batch(text_idx, width))
            weight = len(text_idx) / (len(idx) + len(text_idx))
        else:
            batch = batcher.batch(idx)
        slots = bank.draw([batcher.examples[i].entity_id for i in idx], rng)
        if bank.features is not None:
            embeds = image_embeds(model, batch["input_ids"], bank.features[slots])
            return answer_loss(model, batch, inputs_embeds=embeds, second_weight=weight)
        return answer_loss(model, batch, pixel_values=bank.pixels[slots], second_weight=weight)

    # Stage 1: projector only, naming the entity in the image.
    model.train()
    naming = Batcher(tok, naming_examples(train_entities, prompts.mllm), n_img)
    s1 = index_stream(len(naming), cfg.batch_size, gen)
    proj = list(model.model.multi_modal_projector.parameters())
    for p in model.model.language_model.parameters():
        p.requires_grad_(False)
    model.lm_head.weight.requires_grad_(False)
    losses1 = []
    if cfg.projector_steps:
        losses1 = run_steps(
            lambda _: mm_loss(naming, next(s1)),
            proj,
            cfg.projector_steps,
            cfg.projector_lr,
            cfg.warmup,
            f"{name} stage 1",
        )
    # Stage 2: projector + language model on visual questions, textual facts mixed in.
    for p in itertools.chain(model.model.language_model.parameters(), [model.lm_head.weight]):
        p.requires_grad_(True)
    # The naming examples stay in the mixture: they teach which entity an image shows, which
    # every question about it needs.
    visual = Batcher(
        tok,
        visual_examples(records, prompts.mllm) + naming_examples(train_entities, prompts.mllm),
        n_img,
    )
    textual = Batcher(tok, text_examples(records, prompts.llm))
    n_text = int(round(cfg.batch_size * cfg.text_mix))
    s2 = index_stream(len(visual), cfg.batch_size - n_text, gen)
    s3 = index_stream(len(textual), max(1, n_text), gen)

    def stage2(_: int) -> torch.Tensor:
        return mm_loss(visual, next(s2), next(s3) if n_text else None)

    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if cfg.vision_lr > 0:
        tower = list(model.model.vision_tower.parameters())
        for p in tower:
            p.requires_grad_(True)
        groups.append({"params": tower, "lr": cfg.vision_lr})
    losses2 = run_steps(stage2, groups, cfg.finetune_steps, cfg.lr, cfg.warmup, f"{name} stage 2")
    model.eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    info = {
        "name": name,
        "losses_stage1": losses1,
        "losses_stage2": losses2,
        "seconds": time.time() - t0,
        "seed": seed,
        "n_visual_examples": len(visual),
        "config": cfg.model_dump(),
    }
    _log_json(out_dir, info)
    return info


def load_entities(world_json: Path) -> list[dict]:
    with open(world_json, encoding="utf-8") as fh:
        return json.load(fh)["entities"]
