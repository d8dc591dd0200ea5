"""Verified downloads of single files: over HTTP(S) (`fetch`) and from Google Drive
(`fetch_gdrive`, the Known and Movies image archives, through `gdown`).

`fetch` streams a file to `<dest>.part`, hashing as it goes, checks the length the server
announced and the checksum (`checksums`: pinned in the config, or recorded in the lock file),
and only then renames it into place, so a crash, a truncated transfer or a tampered file never
leaves a file at `dest`. Transient failures (connection errors, HTTP 5xx, short reads) are
retried with exponential backoff; a checksum mismatch is retried too (corruption in transit) and
then reported with both digests. An existing `dest` is verified, never trusted: if its checksum
is wrong the error names it and says how to recover, and nothing is overwritten. The same
verified download (`verified_download`) serves every transport, and `images.fetch_many`.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from mmtrace.config.paper import remote_url
from mmtrace.logs import progress
from mmtrace.paperworld.checksums import (
    CHUNK,
    ChecksumError,
    DownloadError,
    Expect,
    Remote,
    Unpinned,
    expectation,
    record_in_lock,
    sha256_of,
)

log = logging.getLogger(__name__)

GDRIVE_URL = "https://drive.google.com/uc?id={id}"


class Truncated(http.client.HTTPException):
    """The transfer ended before the expected number of bytes (retried)."""


# --------------------------------------------------------------------------------------------
# Transports: one attempt each, into `part`; they return (sha256, size) of what was received.
# --------------------------------------------------------------------------------------------

Transfer = Callable[[str, Path, float, bool, "int | None"], tuple[str, int]]


def urllib_transfer(
    url: str, part: Path, timeout: float, show: bool, size: int | None
) -> tuple[str, int]:
    """One HTTP(S) transfer into `part`, hashing as it goes; checks the announced length."""
    h = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
        announced = resp.headers.get("Content-Length")
        total = int(announced) if announced is not None else size
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
    if announced is not None and received != int(announced):
        raise Truncated(f"received {received} bytes, the server announced {int(announced)}")
    return h.hexdigest(), received


def _gdown_transfer(
    url: str, part: Path, timeout: float, show: bool, size: int | None
) -> tuple[str, int]:
    """One transfer through gdown, which follows Google Drive's virus-scan confirm page for big
    files (urllib would save that HTML page instead). gdown writes its own temporary file next
    to `part` and moves it onto `part`; the caller verifies and renames."""
    import gdown  # deferred: only the Drive sources need it

    kwargs: dict[str, object] = {"url": url, "output": str(part), "quiet": not show}
    if "timeout" in inspect.signature(gdown.download).parameters:  # newer gdown only
        kwargs["timeout"] = timeout
    try:
        gdown.download(**kwargs)
    except Exception as exc:
        # gdown says it kept the partial bytes for its own resume; we delete them (below).
        if "The received bytes are kept in" not in str(exc):
            raise
        msg = re.sub(r"\.?\s*The received bytes are kept in .*", ".", str(exc), flags=re.S)
        raise type(exc)(msg) from exc
    finally:
        # gdown keeps an interrupted transfer as `<output>XXXXXXXX.part` for its own resume; we
        # retry from scratch, so drop it rather than leave it beside the data.
        for stale in part.parent.glob(part.name + "????????.part"):
            stale.unlink(missing_ok=True)
    if not part.exists():
        raise DownloadError(f"gdown reported success for {url} but wrote nothing to {part}")
    return sha256_of(part), part.stat().st_size


def _gdown_errors() -> tuple[type[BaseException], ...]:
    """Exceptions from gdown/requests that mean 'this attempt failed' (not a bug)."""
    try:
        import requests
        from gdown.exceptions import DownloadError as GdownError
    except ImportError:  # pragma: no cover - gdown is a dependency
        return ()
    return (GdownError, requests.exceptions.RequestException)


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code
    response = getattr(exc, "response", None)  # requests.HTTPError
    return getattr(response, "status_code", None)


def _is_permanent(exc: BaseException) -> bool:
    """Errors that retrying cannot fix: HTTP 4xx (but 429), Drive refusing to give the file."""
    code = _http_status(exc)
    if code is not None and 400 <= code < 500 and code != 429:
        return True
    return type(exc).__name__ == "FileURLRetrievalError"  # gdown: permissions / quota page


# --------------------------------------------------------------------------------------------
# The verified download shared by every transport.
# --------------------------------------------------------------------------------------------


def _check_existing(url: str, dest: Path, expect: Expect) -> None:
    """Verify a file already at `dest` against a known checksum (never overwrite it)."""
    assert expect.sha256 is not None
    have = dest.stat().st_size
    if expect.size is not None and have != expect.size:
        got = f"{have} bytes, not {expect.size}"
    else:
        digest = sha256_of(dest)
        if digest == expect.sha256:
            return
        got = f"SHA-256 {digest}, not {expect.sha256}"
    raise ChecksumError(
        f"{dest} exists but has {got} as recorded in {expect.source} for {url}: the file is "
        f"truncated or was modified. Delete it to download it again."
    )


def verified_download(
    remote: Remote,
    dest: Path,
    expect: Expect,
    transfer: Transfer,
    *,
    retries: int,
    timeout: float,
    backoff: float,
    show_progress: bool,
    on_record: Callable[[str, str, int], None] | None,
    level: int = logging.INFO,
    hint: str = "",
) -> Literal["present", "fetched"]:
    """Download `remote` to `dest` through `transfer`, verified against `expect`.

    With a known checksum an existing `dest` is verified and kept. Without one (trust on first
    use) the file is downloaded, `on_record(url, sha256, size)` stores the digest *before* the
    rename (so a file at `dest` with a lock entry has always been checked), and an existing
    `dest` that differs from what the server sends now is reported, not replaced."""
    remote_url(remote.url)  # https only (plain http on localhost): no file://, no ftp://
    if expect.sha256 is not None and dest.exists():
        _check_existing(remote.url, dest, expect)
        log.log(level, "%s: already downloaded and verified", dest)
        return "present"
    if retries < 1:
        raise ValueError(f"retries must be at least 1, not {retries}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    retryable = (
        urllib.error.URLError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
        ChecksumError,
        *_gdown_errors(),
    )
    last: BaseException | None = None
    attempt = 0
    for attempt in range(1, retries + 1):
        try:
            got, size = transfer(remote.url, part, timeout, show_progress, expect.size)
            if expect.size is not None and size != expect.size:
                raise Truncated(f"received {size} bytes, {expect.source} records {expect.size}")
            if expect.sha256 is not None and got != expect.sha256:
                raise ChecksumError(
                    f"{remote.url}: downloaded data hashes to {got}, not {expect.sha256} as "
                    f"recorded in {expect.source} (tampered, or the pinned version changed)"
                )
            last = None
            break
        except retryable as exc:
            last = exc
            part.unlink(missing_ok=True)
            if _is_permanent(exc):
                break  # 404, 403, Drive refusing: retrying will not help
            if attempt < retries:
                wait = backoff * 2 ** (attempt - 1)
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.1fs", remote.url, attempt, exc, wait
                )
                time.sleep(wait)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    if last is not None:
        if isinstance(last, ChecksumError):
            raise ChecksumError(
                f"{last} (after {attempt} attempts; {dest} was not written)"
            ) from None
        raise DownloadError(
            f"could not download {remote.url} to {dest} after {attempt} attempt(s): {last!r}{hint}"
        ) from last

    if expect.sha256 is None:  # trust on first use
        try:
            if dest.exists():
                old = sha256_of(dest)
                if old != got:
                    raise ChecksumError(
                        f"{dest} exists (SHA-256 {old}) but {remote.url} now serves different "
                        f"data (SHA-256 {got}) and no checksum is recorded to tell which is "
                        f"right. Delete {dest} to accept the new download."
                    )
            if on_record is not None:
                on_record(remote.url, got, size)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    os.replace(part, dest)
    log.log(level, "%s: downloaded and verified (sha256 %s)", dest, got[:12])
    return "fetched"


def _lock_recorder(lock: Path) -> Callable[[str, str, int], None]:
    def record(url: str, sha: str, size: int) -> None:
        record_in_lock(lock, {url: (sha, size)})
        log.warning(
            "%s: no checksum was pinned; trusting this first download and recording sha256 %s "
            "(%d bytes) in %s. Check it, or pin it in the config.",
            url,
            sha,
            size,
            lock,
        )

    return record


def fetch(
    remote: Remote,
    dest: str | Path,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    show_progress: bool = True,
    lock: str | Path | None = None,
    unpinned: Unpinned = "error",
) -> Path:
    """Download `remote` to `dest` (atomically, verified); return `dest`.

    A `dest` that already exists with the right checksum is kept as is (no network access).
    `remote.sha256 = None` follows the `unpinned` policy with the lock file `lock` (see
    `checksums`); a pinned remote ignores the lock."""
    dest = Path(dest)
    lock = Path(lock) if lock is not None else None
    expect = expectation(remote, lock, unpinned)
    verified_download(
        remote,
        dest,
        expect,
        urllib_transfer,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        show_progress=show_progress,
        on_record=_lock_recorder(lock) if lock is not None else None,
    )
    return dest


def fetch_gdrive(
    file_id: str,
    dest: str | Path,
    sha256: str | None,
    size: int | None = None,
    url: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    show_progress: bool = True,
    lock: str | Path | None = None,
    unpinned: Unpinned = "error",
) -> Path:
    """Download Google Drive file `file_id` to `dest` through gdown, with the same checks as
    `fetch` (size, SHA-256, atomic rename, retries, unpinned policy keyed by the Drive URL).

    `url` replaces the Drive URL (tests point it at a local server; gdown downloads any plain
    URL). If Drive refuses the file (permissions, or its daily quota for popular files) the
    error says how to download it by hand: a file placed at `dest` is verified, not trusted."""
    dest = Path(dest)
    lock = Path(lock) if lock is not None else None
    remote = Remote(url or GDRIVE_URL.format(id=file_id), sha256, size)
    expect = expectation(remote, lock, unpinned)
    verified_download(
        remote,
        dest,
        expect,
        _gdown_transfer,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        show_progress=show_progress,
        on_record=_lock_recorder(lock) if lock is not None else None,
        hint=(
            f"\nIf Google Drive refuses automated downloads, open "
            f"https://drive.google.com/file/d/{file_id}/view in a browser, save the file as "
            f"{dest} and rerun: it will be verified against its checksum."
        ),
    )
    return dest
