"""Logging set-up shared by the CLI and the workflow scripts."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: int = logging.INFO, stream=None) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=stream or sys.stderr, force=True)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter


@contextlib.contextmanager
def to_file(path: str | Path | None) -> Iterator[None]:
    """Send logging and stderr (where tqdm writes its progress bars) to `path` for a job."""
    if path is None:
        configure()
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh, contextlib.redirect_stderr(fh):
        configure(stream=fh)
        try:
            yield
        except Exception:
            logging.getLogger("mmtrace").exception("job failed")
            raise
        finally:
            logging.shutdown()


def progress(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar tuned for log files: few updates, fixed width."""
    kwargs.setdefault("mininterval", 5.0)
    kwargs.setdefault("ncols", 100)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
