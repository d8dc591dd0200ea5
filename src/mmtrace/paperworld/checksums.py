"""What a downloaded file must hash to: pins, and the lock file of trust-on-first-use checksums.

Every remote file is pinned by its SHA-256 (and, where known, its size) in the config. Some
checksums cannot be written down in advance (the ~5,000 COCO images, archives whose authors
published no digest). For those the policy is explicit (`unpinned`): `"error"` refuses to
download them at all, `"record"` trusts the first download and writes its SHA-256 and size to a
JSON lock file, after which every later download or verification of that URL is checked against
the lock, exactly as if it had been pinned in the config. A lock entry is a pin under either
policy (so a lock file recorded once can be committed and then enforced with `"error"`); a
remote pinned in the config never consults the lock. `expectation` applies that order; the
downloads themselves are in `fetch` and `images`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmtrace.io import write_json

CHUNK = 1 << 20

Unpinned = Literal["error", "record"]


@dataclass(frozen=True)
class Remote:
    """A file to download: where from, and what it must hash to (None: not known in advance,
    see the module docstring for the trust-on-first-use policy)."""

    url: str
    sha256: str | None
    size: int | None = None


class DownloadError(RuntimeError):
    """A download failed after every retry (the message names the URL and the file)."""


class ChecksumError(DownloadError):
    """A file's SHA-256 (or size) differs from the one recorded in the config or lock file."""


class UnpinnedError(DownloadError):
    """A remote has no checksum in the config or the lock file and recording is not allowed."""


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Lock file: trust-on-first-use checksums, keyed by URL.
# --------------------------------------------------------------------------------------------

# flock() conflicts between separate open() calls even inside one process, but a process-wide
# mutex as well keeps threads from queueing on the kernel lock and documents the intent.
_LOCK_MUTEX = threading.Lock()


def read_lock(lock: str | Path | None) -> dict[str, dict[str, object]]:
    """The entries of a lock file (`{url: {"sha256": ..., "size": ...}}`); {} if it is absent."""
    if lock is None or not Path(lock).exists():
        return {}
    try:
        with open(lock, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DownloadError(
            f"lock file {lock} is not valid JSON ({exc}); fix or delete it (deleting it means "
            f"the recorded checksums are trusted again on the next download)"
        ) from exc
    if not isinstance(data, dict):
        raise DownloadError(f"lock file {lock} must hold a JSON object keyed by URL")
    return data


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<lock>.flock` so concurrent jobs merge their entries instead
    of overwriting each other's (the lock file itself is replaced by rename, so it cannot carry
    the flock)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK_MUTEX, open(lock.with_name(lock.name + ".flock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def record_in_lock(lock: str | Path, entries: Mapping[str, tuple[str, int]]) -> None:
    """Merge `{url: (sha256, size)}` into the lock file (re-read under the file lock, written
    atomically with sorted keys). An entry that already exists with another digest is an error:
    two downloads of one URL disagreed, and only a person can tell which is right."""
    if not entries:
        return
    lock = Path(lock)
    with _locked(lock):
        data = read_lock(lock)
        for url, (sha, size) in sorted(entries.items()):
            old = data.get(url)
            if isinstance(old, dict) and old.get("sha256") not in (None, sha):
                raise ChecksumError(
                    f"{url}: downloaded data hashes to {sha}, but the lock file {lock} already "
                    f"records {old.get('sha256')} (the file changed on the server, or another "
                    f"job received different bytes); check which is right and fix {lock}"
                )
            data[url] = {"sha256": sha, "size": int(size)}
        write_json(lock, data)


@dataclass(frozen=True)
class Expect:
    """What a download must match, and where that expectation came from (for messages)."""

    sha256: str | None  # None: trust on first use
    size: int | None
    source: str


def expectation(remote: Remote, lock: Path | None, unpinned: Unpinned) -> Expect:
    if unpinned not in ("error", "record"):
        raise ValueError(f"unpinned must be 'error' or 'record', not {unpinned!r}")
    if remote.sha256 is not None:
        return Expect(remote.sha256, remote.size, "the config")
    entry = read_lock(lock).get(remote.url)
    if isinstance(entry, dict) and entry.get("sha256"):
        size = entry.get("size")
        return Expect(
            str(entry["sha256"]),
            int(size) if isinstance(size, int) else remote.size,
            f"the lock file {lock}",
        )
    if unpinned == "error":
        where = f"nor in the lock file {lock}" if lock is not None else "and no lock file is used"
        raise UnpinnedError(
            f"{remote.url} has no sha256 in the config {where}, and unpinned downloads are "
            f"refused (downloads.unpinned: error). Put its sha256 in the config, or set "
            f"downloads.unpinned: record to trust the first download and record its checksum "
            f"in the lock file."
        )
    if lock is None:
        raise ValueError(f"{remote.url}: recording an unpinned checksum needs a lock file path")
    return Expect(None, remote.size, "")
