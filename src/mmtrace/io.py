"""Atomic, deterministic file writing.

Every result file goes through here so that an interrupted job never leaves a half-written file
behind (write to a temporary sibling, then rename) and reruns produce byte-identical output
(sorted keys, fixed float formatting).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FLOAT_DIGITS = 6


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces `path` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def _round_floats(obj: Any, digits: int) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, digits)
    if isinstance(obj, dict):
        return {str(k): _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _round_floats(obj.item(), digits)
    return obj


def dumps_json(obj: Any, digits: int = FLOAT_DIGITS) -> str:
    """Serialise with sorted keys and rounded floats so reruns are byte-identical."""
    return (
        json.dumps(_round_floats(obj, digits), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    )


def write_json(path: str | Path, obj: Any, digits: int = FLOAT_DIGITS) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(dumps_json(obj, digits))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def atomic_save(path: str | Path, save: Callable[[Path], None]) -> None:
    """Call `save(tmp_path)` and move the result onto `path` (for writers that take a path)."""
    with atomic_path(path) as tmp:
        save(tmp)
