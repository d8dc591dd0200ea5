"""Atomic, deterministic file writing.

Every result file goes through here so that an interrupted job never leaves a half-written file
behind (write to a temporary sibling, then rename) and reruns produce byte-identical output
(sorted keys, fixed float formatting).
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FLOAT_DIGITS = 6

log = logging.getLogger(__name__)


def _umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permissions `path` would get from a plain `open(path, "w")`: an existing file keeps
    its own, a new one gets 0666 minus the umask (`mkstemp` makes 0600 files, which would hide
    results from collaborators on a shared cluster)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


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
        os.chmod(tmp_path, _mode_for(path))
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; it replaces `path` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def _round_floats(obj: Any, digits: int, missing: list[int]) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            missing.append(1)
            return None
        return round(obj, digits)
    if isinstance(obj, dict):
        return {str(k): _round_floats(v, digits, missing) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits, missing) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _round_floats(obj.item(), digits, missing)
    return obj


def _missing_at(obj: Any, where: str = "") -> Iterator[str]:
    """Where `obj` holds NaN or infinities (key paths), in order."""
    if hasattr(obj, "item") and callable(obj.item) and not isinstance(obj, (dict, list, tuple)):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        yield where or "<top level>"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _missing_at(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _missing_at(v, f"{where}[{i}]")


def dumps_json(obj: Any, digits: int = FLOAT_DIGITS, name: str = "JSON") -> str:
    """Serialise with sorted keys and rounded floats so reruns are byte-identical. NaN and
    infinities have no JSON form: they are written as null, with a warning saying where."""
    missing: list[int] = []
    text = json.dumps(
        _round_floats(obj, digits, missing), sort_keys=True, indent=2, ensure_ascii=False
    )
    if missing:
        first = [w for _, w in zip(range(3), _missing_at(obj), strict=False)]
        log.warning(
            "%s: %d NaN or infinite value(s) written as null, e.g. at %s",
            name,
            len(missing),
            ", ".join(first),
        )
    return text + "\n"


def write_json(path: str | Path, obj: Any, digits: int = FLOAT_DIGITS) -> None:
    text = dumps_json(obj, digits, name=str(path))
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


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
