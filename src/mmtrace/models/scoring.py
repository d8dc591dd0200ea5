"""Next-token probabilities after a prompt: what accuracy, tracing and editing all score."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmtrace.models.language import language_call, logits_at
from mmtrace.models.loading import LoadedModel
from mmtrace.prompts import answer_continuation


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token in a right-padded batch."""
    return attention_mask.sum(dim=1) - 1


@torch.no_grad()
def next_token_probs(loaded: LoadedModel, prompts: Sequence[str], images=None) -> torch.Tensor:
    """Softmax over the vocabulary for the token following each prompt, shape [batch, vocab]."""
    return probs_of_prepared(loaded, loaded.encode(list(prompts), images))


@torch.no_grad()
def prepare_prompts(loaded: LoadedModel, prompts: Sequence[str], images=None) -> dict:
    """A batch encoded once, with an MLLM's language-model call recorded (`models.language`:
    its input embeddings with the image features in place, its position ids and masks, as the
    model builds them): scoring it again with `probs_of_prepared` reruns only the language
    model. Valid while no weight before the language model's layers changes, as in editing
    (MultEdit and fine-tuning change one MLP of the language model), where the same probes are
    scored after every edit."""
    enc = loaded.encode(list(prompts), images)
    if not loaded.is_multimodal:
        return enc
    return {"call": language_call(loaded.model, enc), "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def probs_of_prepared(loaded: LoadedModel, enc: dict) -> torch.Tensor:
    """`next_token_probs` of a batch from `prepare_prompts`, shape [batch, vocab]."""
    idx = last_positions(enc["attention_mask"])
    if "call" in enc:
        logits = logits_at(loaded.model, enc["call"], idx)
    else:
        out = loaded.model(**enc)
        logits = out.logits[torch.arange(idx.numel(), device=idx.device), idx]
    return torch.softmax(logits.float(), dim=-1)


def answer_probs(logits: torch.Tensor, answer_id: int) -> torch.Tensor:
    """p(answer) from next-token logits of shape [..., vocab] (softmax in float32)."""
    return torch.softmax(logits.float(), dim=-1)[..., answer_id]


def last_logits(model, inputs: dict) -> torch.Tensor:
    """Next-token logits after a batch-1 prompt, [vocab]: the LM head runs on the last position
    only (`logits_to_keep=1`), not on every position as a plain forward does (models without
    that argument get a plain forward)."""
    try:
        out = model(**inputs, logits_to_keep=1)
    except TypeError:
        out = model(**inputs)
    return out.logits[0, -1]


def answer_prob(model, inputs: dict, answer_id: int) -> float:
    """p(answer) after a batch-1 prompt: the quantity every causal trace compares."""
    return float(answer_probs(model(**inputs).logits[0, -1], answer_id))


def first_answer_token(tokenizer, prompt: str, answer: str) -> int:
    """The first token the model must produce to start `answer` after `prompt`.

    Found as the first token where tokenising prompt+answer departs from tokenising the prompt,
    which is right for both byte-level BPE and SentencePiece tokenizers.
    """
    p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    full = tokenizer(prompt + answer_continuation(answer), add_special_tokens=True)["input_ids"]
    i = 0
    while i < min(len(p), len(full)) and p[i] == full[i]:
        i += 1
    if i >= len(full):
        raise ValueError(f"answer {answer!r} adds no token after the prompt")
    return full[i]
