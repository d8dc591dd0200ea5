"""The one safetensors-only policy: which checkpoint files are fetched and which are loaded.

Only formats that cannot execute code when loaded are ever fetched or loaded: safetensors
weights, JSON configs, tokenizer and processor files. Formats that unpickle (or otherwise run
code) when loaded (`*.bin`, `*.pt` and the other `PICKLE_PATTERNS`) and remote code (`*.py`)
are never downloaded (`ALLOW_PATTERNS`, `REFUSED_PATTERNS`: `hub.snapshot`,
`adapters.snapshot_dir`), and a local checkpoint that has only such weights is refused before
anything reads it (`refuse_pickle`: `loading.load`, `adapters.read_safetensors`). The only
exception is explicit: a model entry's `weights: convert_pickle` fetches its
`PICKLED_WEIGHTS` once, for `hub.convert_pickled` to read with torch's weights-only unpickler
and rewrite as safetensors.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

# Safetensors weights (and their shard index), configs, tokenizers and processors.
ALLOW_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "*.json",  # config, generation/preprocessor/processor configs, tokenizer.json, indices
    "tokenizer.model",  # sentencepiece (protobuf, not a pickle)
    "*.tiktoken",
    "*.txt",  # merges.txt, vocab.txt
    "*.jinja",  # chat_template.jinja (transformers >= 4.50)
)
# Weight formats that unpickle (run code) when loaded.
PICKLE_PATTERNS: tuple[str, ...] = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*.joblib",
    "*.msgpack",
    "*.h5",
)
# Never downloaded, whatever the allow patterns say: pickles, and remote code.
REFUSED_PATTERNS: tuple[str, ...] = (*PICKLE_PATTERNS, "*.py")
# File names an allow pattern must not match (a pattern that does would admit pickles or code).
REFUSED_EXAMPLES = ("pytorch_model.bin", "model.pt", "model.pth", "x.pkl", "x.ckpt", "model.py")
# The only pickles ever fetched, and only for `hub.convert_pickled`: transformers' weight shards.
PICKLED_WEIGHTS = ("pytorch_model*.bin",)


def is_refused(name: str) -> bool:
    """Whether a file name is a pickle or remote code (`REFUSED_PATTERNS`)."""
    return any(fnmatch.fnmatch(name, p) for p in REFUSED_PATTERNS)


def admits_refused(pattern: str) -> str | None:
    """The first of `REFUSED_EXAMPLES` that an allow pattern would match, or None."""
    return next((n for n in REFUSED_EXAMPLES if fnmatch.fnmatch(n, pattern)), None)


def pickles(names: Iterable[str]) -> list[str]:
    """The names among `names` that are pickled weights (`PICKLE_PATTERNS`), sorted."""
    return sorted(n for n in names if any(fnmatch.fnmatch(n, p) for p in PICKLE_PATTERNS))


class RefusedWeights(ValueError):
    """A checkpoint offers only weights that would run code when loaded."""


def refuse_pickle(directory: str | Path) -> None:
    """Refuse a local checkpoint that has pickle weights only: unpickling runs arbitrary code."""
    d = Path(directory)
    if not d.is_dir():
        return
    names = [p.name for p in d.iterdir()]
    if any(n.endswith(".safetensors") for n in names):
        return
    found = pickles(names)
    if found:
        raise RefusedWeights(
            f"{d} holds only pickle weights ({', '.join(found)}); they are refused because "
            "loading them can run arbitrary code. Use a checkpoint with .safetensors weights."
        )
