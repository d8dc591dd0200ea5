"""Verified downloads for the paper-scale data (groundwork for issue 6).

Every remote file is pinned by its SHA-256 (and, where known, its size) in the config. `fetch`
streams it to `<dest>.part`, hashing as it goes, checks the length the server announced and the
checksum, and only then renames it into place, so a crash, a truncated transfer or a tampered
file never leaves a file at `dest`. Transient failures (connection errors, HTTP 5xx, short reads)
are retried with exponential backoff; a checksum mismatch is retried too (corruption in transit)
and then reported with both digests. An existing `dest` is verified, never trusted: if its
checksum is wrong the error names it and says how to recover, and nothing is overwritten.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mmtrace.logs import progress

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """A file to download: where from, and what it must hash to."""

    url: str
    sha256: str
    size: int | None = None


class DownloadError(RuntimeError):
    """A download failed after every retry (the message names the URL and the file)."""


class Truncated(http.client.HTTPException):
    """The transfer ended before the expected number of bytes (retried)."""


class ChecksumError(DownloadError):
    """A file's SHA-256 differs from the one recorded in the config."""


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verify_existing(remote: Remote, dest: Path) -> bool:
    got = sha256_of(dest)
    if got == remote.sha256:
        return True
    raise ChecksumError(
        f"{dest} exists but its SHA-256 is {got}, not {remote.sha256} as recorded for "
        f"{remote.url}: the file is truncated or was modified. Delete it to download it again."
    )


def _attempt(remote: Remote, part: Path, timeout: float, show: bool) -> str:
    """One transfer into `part`; returns the SHA-256 of what was received."""
    h = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(remote.url, timeout=timeout) as resp, open(part, "wb") as out:
        announced = resp.headers.get("Content-Length")
        total = int(announced) if announced is not None else remote.size
        with progress(
            total=total, unit="B", unit_scale=True, desc=part.stem, disable=not show
        ) as bar:
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                out.write(block)
                h.update(block)
                received += len(block)
                bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
    for expected, source in (
        (announced, "the server announced"),
        (remote.size, "the config records"),
    ):
        if expected is not None and received != int(expected):
            raise Truncated(f"received {received} bytes, {source} {int(expected)}")
    return h.hexdigest()


def fetch(
    remote: Remote,
    dest: str | Path,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    show_progress: bool = True,
) -> Path:
    """Download `remote` to `dest` (atomically, verified); return `dest`.

    A `dest` that already exists with the right checksum is kept as is (no network access)."""
    dest = Path(dest)
    if dest.exists() and _verify_existing(remote, dest):
        log.info("%s: already downloaded and verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            got = _attempt(remote, part, timeout, show_progress)
            if got != remote.sha256:
                raise ChecksumError(
                    f"{remote.url}: downloaded data hashes to {got}, not {remote.sha256} as "
                    f"recorded in the config (tampered, or the pinned version changed)"
                )
            os.replace(part, dest)
            log.info("%s: downloaded and verified (sha256 %s)", dest, got[:12])
            return dest
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            TimeoutError,
            ChecksumError,
        ) as exc:
            last = exc
            part.unlink(missing_ok=True)
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500 and exc.code != 429:
                break  # 404, 403...: retrying will not help
            if attempt < retries:
                wait = backoff * 2 ** (attempt - 1)
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.1fs", remote.url, attempt, exc, wait
                )
                time.sleep(wait)
    if isinstance(last, ChecksumError):
        raise ChecksumError(f"{last} (after {retries} attempts; {dest} was not written)") from None
    raise DownloadError(
        f"could not download {remote.url} to {dest} after {attempt} attempt(s): {last!r}"
    ) from last
