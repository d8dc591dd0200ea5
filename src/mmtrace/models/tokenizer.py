"""A byte-level BPE tokenizer for the toy world, trained with `tokenizers`.

Subword units matter: real constraints ("This building", "Stanley Kubrick") span several tokens, and
the tracing figures group tokens by their role within a span.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>", "image": "<image>"}


def train_bpe(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = SPECIALS["bos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIALS["bos"],
        eos_token=SPECIALS["eos"],
        unk_token=SPECIALS["unk"],
        pad_token=SPECIALS["pad"],
        extra_special_tokens={"image_token": SPECIALS["image"]},
        padding_side="right",
        model_max_length=512,
    )
    return fast
