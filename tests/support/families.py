"""Tiny random checkpoints of the Hugging Face MLLM families (docs/families.md), built offline
from transformers' own configuration and processor classes, about 50k parameters each.

Every family gets a character-level tokenizer (any ASCII prompt tokenises, one token per
character, with the family's special tokens), a processor of the family's own class where
transformers can build one here (SmolVLM's needs `num2words`, absent from the lock, so SmolVLM
is tested with the Idefics3 processor, whose image layout it shares), a chat template modelled
on the family's real one (for `--prompt chat`), and its native raw prompt. Weights are drawn at
10x the default initialisation scale so that single restorations move p(answer) by far more
than the tolerances the tests compare at.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers as T
from PIL import Image
from tokenizers import Tokenizer, models, processors

from mmtrace.models.loading import image_only

CHARS = [c for c in string.printable if c not in "\x0b\x0c\r"]
INIT = 0.2
TEXT = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,  # grouped-query attention
    initializer_range=INIT,
    max_position_embeddings=512,
)
IMAGE_SIZE = 16
QUESTION = "Which city is this building in"
CONSTRAINT = "this building"
REPLACEMENT = "that mountain"  # the same number of characters, so of tokens

QWEN_CHAT = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)
GEMMA_CHAT = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
IDEFICS_CHAT = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
LLAVA_CHAT = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
ONEVISION_CHAT = QWEN_CHAT.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")


def tokenizer(
    specials: list[str], bos: bool = True, named: dict[str, str] | None = None
) -> T.PreTrainedTokenizerFast:
    """One token per printable character, then `specials` (added, never split)."""
    base = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {t: i for i, t in enumerate(base + CHARS)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", 1)]
        )
    fast = T.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        **({"extra_special_tokens": named} if named else {}),
    )
    fast.add_tokens(specials, special_tokens=True)
    return fast


def image(seed: int = 0, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _clip(**kw) -> T.CLIPVisionConfig:
    return T.CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=8, **kw,
    )  # fmt: skip


def _siglip(patch: int = 4, **kw) -> T.SiglipVisionConfig:
    return T.SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=patch, **kw,
    )  # fmt: skip


PINPOINTS = [[16, 16], [16, 32], [32, 16], [32, 32]]


def llava():
    tok = tokenizer(["<image>"])
    cfg = T.LlavaConfig(
        vision_config=_clip(),
        text_config=T.LlamaConfig(vocab_size=128, **TEXT),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=4,
    )
    proc = T.LlavaProcessor(
        image_processor=T.CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        ),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT,
    )
    return T.LlavaForConditionalGeneration(cfg), proc


def llava_next():
    tok = tokenizer(["<image>"])
    cfg = T.LlavaNextConfig(
        vision_config=_clip(),
        text_config=T.LlamaConfig(vocab_size=128, **TEXT),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
    )
    proc = T.LlavaNextProcessor(
        image_processor=T.LlavaNextImageProcessor(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
            image_grid_pinpoints=PINPOINTS,
        ),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT,
    )
    return T.LlavaNextForConditionalGeneration(cfg), proc


def llava_onevision():
    tok = tokenizer(["<image>", "<video>", "<|im_start|>", "<|im_end|>"], bos=False)
    cfg = T.LlavaOnevisionConfig(
        vision_config=_siglip(patch=8),
        text_config=T.Qwen2Config(vocab_size=128, **TEXT),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    proc = image_only(T.LlavaOnevisionProcessor)(
        image_processor=T.LlavaOnevisionImageProcessor(
            size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=PINPOINTS
        ),
        tokenizer=tok,
        num_image_tokens=4,
        vision_feature_select_strategy="full",
        chat_template=ONEVISION_CHAT,
    )
    return T.LlavaOnevisionForConditionalGeneration(cfg), proc


def qwen2_vl(v25: bool = False):
    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok = tokenizer([*specials, "<|im_start|>", "<|im_end|>"], bos=False)
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    # M-RoPE: the rotary dimensions split into temporal, height and width sections
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]}
    common = dict(
        text_config=dict(vocab_size=128, **TEXT, rope_parameters=rope),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    vision = dict(depth=2, num_heads=2, patch_size=4, spatial_merge_size=2, temporal_patch_size=2)
    if v25:
        vision.update(hidden_size=16, intermediate_size=32, out_hidden_size=32, window_size=16)
        cfg = T.Qwen2_5_VLConfig(vision_config={**vision, "fullatt_block_indexes": [1]}, **common)
        model, cls = T.Qwen2_5_VLForConditionalGeneration(cfg), T.Qwen2_5_VLProcessor
    else:
        vision.update(embed_dim=16, hidden_size=32, mlp_ratio=2)
        cfg = T.Qwen2VLConfig(vision_config=vision, **common)
        model, cls = T.Qwen2VLForConditionalGeneration(cfg), T.Qwen2VLProcessor
    pixels = IMAGE_SIZE * IMAGE_SIZE
    proc = image_only(cls)(
        image_processor=T.Qwen2VLImageProcessor(
            size={"shortest_edge": pixels, "longest_edge": pixels},
            patch_size=4,
            merge_size=2,
            temporal_patch_size=2,
        ),
        tokenizer=tok,
        chat_template=QWEN_CHAT,
    )
    return model, proc


def idefics3(smol: bool = False):
    specials = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"]
    tok = tokenizer(specials)
    config, model = (
        (T.SmolVLMConfig, T.SmolVLMForConditionalGeneration)
        if smol
        else (T.Idefics3Config, T.Idefics3ForConditionalGeneration)
    )
    cfg = config(
        text_config=T.LlamaConfig(vocab_size=128, **TEXT),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=4,
        ),  # fmt: skip
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    proc = T.Idefics3Processor(
        image_processor=T.Idefics3ImageProcessor(
            size={"longest_edge": IMAGE_SIZE},
            max_image_size={"longest_edge": IMAGE_SIZE},
            do_image_splitting=False,
        ),
        tokenizer=tok,
        image_seq_len=4,
        chat_template=IDEFICS_CHAT,
    )
    return model(cfg), proc


def gemma3(sliding_window: int = 8):
    """Gemma-3: local (sliding-window) and global layers alternating, each type with its own
    rotary base, scaled embeddings, an image block that attends bidirectionally;
    `sliding_window` 8 binds on the test prompts."""
    named = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    tok = tokenizer([*named.values(), "<start_of_turn>", "<end_of_turn>"], named=named)
    text = T.Gemma3TextConfig(
        vocab_size=128, head_dim=8, sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"] * 2,
        **{k: v for k, v in TEXT.items() if k != "max_position_embeddings"},
    )  # fmt: skip
    cfg = T.Gemma3Config(
        text_config=text,
        vision_config=_siglip(),
        mm_tokens_per_image=4,
        boi_token_index=tok.convert_tokens_to_ids(named["boi_token"]),
        eoi_token_index=tok.convert_tokens_to_ids(named["eoi_token"]),
        image_token_index=tok.convert_tokens_to_ids(named["image_token"]),
    )
    proc = T.Gemma3Processor(
        image_processor=T.Gemma3ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tok,
        image_seq_length=4,
        chat_template=GEMMA_CHAT,
    )
    model = T.Gemma3ForConditionalGeneration(cfg)
    with torch.no_grad():  # transformers initialises the image projection to zeros
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(0, INIT)
    return model, proc


def paligemma(version: int = 1):
    """PaliGemma (a Gemma text model) or PaliGemma 2 (Gemma 2: local and global layers, attention
    and final logit soft-capping)."""
    tok = tokenizer([])
    ip = T.SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    ip.image_seq_length = (IMAGE_SIZE // 4) ** 2
    proc = T.PaliGemmaProcessor(image_processor=ip, tokenizer=tok)  # adds <image>, <loc...>
    config = T.GemmaConfig if version == 1 else T.Gemma2Config
    text = config(
        vocab_size=len(tok), head_dim=8,
        **{k: v for k, v in TEXT.items() if k != "max_position_embeddings"},
    )  # fmt: skip
    cfg = T.PaliGemmaConfig(
        text_config=text,
        vision_config=_siglip(projection_dim=32),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        projection_dim=32,
    )
    return T.PaliGemmaForConditionalGeneration(cfg), proc


def mllama():
    tok = tokenizer(["<|image|>"])
    text = dict(
        vocab_size=128, cross_attention_layers=[1], pad_token_id=3,
        **{k: v for k, v in TEXT.items() if k != "max_position_embeddings"},
    )  # fmt: skip
    vision = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_global_layers=1,
        num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8, vision_output_dim=32,
        max_num_tiles=1, supported_aspect_ratios=[[1, 1]], intermediate_layers_indices=[0],
    )  # fmt: skip
    cfg = T.MllamaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=tok.convert_tokens_to_ids("<|image|>"),
    )
    proc = T.MllamaProcessor(
        image_processor=T.MllamaImageProcessor(
            size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, max_image_tiles=1
        ),
        tokenizer=tok,
    )
    return T.MllamaForConditionalGeneration(cfg), proc


@dataclass(frozen=True)
class Family:
    build: Callable[[], tuple[Any, Any]]
    prompt: str  # the family's raw prompt template, with {question}
    status: str  # engine | reference | refused (docs/families.md)


QWEN_PROMPT = (
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{question}?<|im_end|>\n"
    "<|im_start|>assistant\n"
)
FAMILIES: dict[str, Family] = {
    "llava": Family(
        llava, "<image>\nUSER: {question}? Answer in a few words.\nASSISTANT:", "engine"
    ),
    "llava_next": Family(llava_next, "<image>\nUSER: {question}?\nASSISTANT:", "engine"),
    "llava_onevision": Family(
        llava_onevision,
        "<|im_start|>user <image>\n{question}?<|im_end|><|im_start|>assistant\n",
        "engine",
    ),  # fmt: skip
    "qwen2_vl": Family(qwen2_vl, QWEN_PROMPT, "engine"),
    "qwen2_5_vl": Family(lambda: qwen2_vl(True), QWEN_PROMPT, "engine"),
    "idefics3": Family(idefics3, "User:<image>{question}?<end_of_utterance>\nAssistant:", "engine"),
    "smolvlm": Family(
        lambda: idefics3(True), "User:<image>{question}?<end_of_utterance>\nAssistant:", "engine"
    ),
    "gemma3": Family(
        gemma3,
        "<start_of_turn>user\n<start_of_image>{question}?<end_of_turn>\n<start_of_turn>model\n",
        "engine",
    ),  # fmt: skip
    "paligemma": Family(paligemma, "<image>{question}?", "reference"),
    "paligemma2": Family(lambda: paligemma(2), "<image>{question}?", "reference"),
    "mllama": Family(mllama, "<|image|>{question}?", "refused"),
}


def build(name: str, seed: int = 0):
    """(model in eval mode, processor) of the family `name`, weights from `seed`."""
    torch.manual_seed(seed)
    model, proc = FAMILIES[name].build()
    return model.eval(), proc


def write(name: str, out: Path, seed: int = 0) -> Path:
    """A checkpoint folder of the family, as save_pretrained writes one (safetensors)."""
    model, proc = build(name, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def loaded(name: str, seed: int = 0):
    """The family's tiny model as `mmtrace.models.loading.load` returns a checkpoint."""
    from mmtrace.models.loading import LoadedModel

    model, proc = build(name, seed)
    return LoadedModel(name, model, proc.tokenizer, proc, "mllm")


def encoded(lm, template: str | None = None, seed: int = 0):
    """The test question, its constraint located on the processor's tokens."""
    from mmtrace.models.encoding import Span, encode_question

    start = QUESTION.index(CONSTRAINT)
    span = Span(start, start + len(CONSTRAINT), "visual", REPLACEMENT)
    template = template or FAMILIES[lm.name].prompt
    return encode_question(lm, template, "q", QUESTION, [span], image(seed))


def positions(prep) -> list[int]:
    """The cells the family checks compare: before the visual constraint, on it, the two after
    it, and the last two positions."""
    span, seq = prep.enc.span_positions["visual"], len(prep.enc.input_ids)
    return sorted({span[0] - 1, *span, span[-1] + 1, span[-1] + 2, seq - 2, seq - 1})


def prepared(lm, corruption: str = "replace", template: str | None = None):
    """The test question's clean and corrupted passes (tracing.question.prepare)."""
    from mmtrace.tracing.question import TraceSettings, prepare

    enc = encoded(lm, template)
    settings = TraceSettings(corruption=corruption, seed=1)
    return prepare(lm, enc, template or FAMILIES[lm.name].prompt, QUESTION, "visual", settings)
