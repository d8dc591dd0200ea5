"""Verified downloads for the paper-scale data (issue 6).

Every remote file is pinned by its SHA-256 (and, where known, its size) in the config. `fetch`
streams it to `<dest>.part`, hashing as it goes, checks the length the server announced and the
checksum, and only then renames it into place, so a crash, a truncated transfer or a tampered
file never leaves a file at `dest`. Transient failures (connection errors, HTTP 5xx, short reads)
are retried with exponential backoff; a checksum mismatch is retried too (corruption in transit)
and then reported with both digests. An existing `dest` is verified, never trusted: if its
checksum is wrong the error names it and says how to recover, and nothing is overwritten.

Some checksums cannot be written down in advance (the ~5,000 COCO images, archives whose
authors published no digest). For those the policy is explicit (`unpinned`): `"error"` refuses
to download them at all, `"record"` trusts the first download and writes its SHA-256 and size
to a JSON lock file, after which every later download or verification of that URL is checked
against the lock, exactly as if it had been pinned in the config. A lock entry is a pin under
either policy (so a lock file recorded once can be committed and then enforced with
`"error"`); a remote pinned in the config never consults the lock.

The same verification wraps the other transports: `fetch_gdrive` (Google Drive archives via
`gdown`), `fetch_many` (many small files in a thread pool, resumable), and `extract` (safe,
atomic unpacking of the archives, with an optional per-member checksum).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import inspect
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from mmtrace.io import write_json
from mmtrace.logs import progress

log = logging.getLogger(__name__)

CHUNK = 1 << 20

Unpinned = Literal["error", "record"]

GDRIVE_URL = "https://drive.google.com/uc?id={id}"


@dataclass(frozen=True)
class Remote:
    """A file to download: where from, and what it must hash to (None: not known in advance,
    see the module docstring for the trust-on-first-use policy)."""

    url: str
    sha256: str | None
    size: int | None = None


class DownloadError(RuntimeError):
    """A download failed after every retry (the message names the URL and the file)."""


class Truncated(http.client.HTTPException):
    """The transfer ended before the expected number of bytes (retried)."""


class ChecksumError(DownloadError):
    """A file's SHA-256 (or size) differs from the one recorded in the config or lock file."""


class UnpinnedError(DownloadError):
    """A remote has no checksum in the config or the lock file and recording is not allowed."""


class ExtractError(DownloadError):
    """An archive is unsafe (path traversal, links outside, special files) or unreadable."""


class FetchManyError(DownloadError):
    """Some files of a `fetch_many` batch failed; `report` says which (the rest are kept)."""

    def __init__(self, message: str, report: FetchReport):
        super().__init__(message)
        self.report = report


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
class _Expect:
    """What a download must match, and where that expectation came from (for messages)."""

    sha256: str | None  # None: trust on first use
    size: int | None
    source: str


def _expectation(remote: Remote, lock: Path | None, unpinned: Unpinned) -> _Expect:
    if unpinned not in ("error", "record"):
        raise ValueError(f"unpinned must be 'error' or 'record', not {unpinned!r}")
    if remote.sha256 is not None:
        return _Expect(remote.sha256, remote.size, "the config")
    entry = read_lock(lock).get(remote.url)
    if isinstance(entry, dict) and entry.get("sha256"):
        size = entry.get("size")
        return _Expect(
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
    return _Expect(None, remote.size, "")


# --------------------------------------------------------------------------------------------
# Transports: one attempt each, into `part`; they return (sha256, size) of what was received.
# --------------------------------------------------------------------------------------------

Transfer = Callable[[str, Path, float, bool, "int | None"], tuple[str, int]]


def _urllib_transfer(
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


def _check_existing(url: str, dest: Path, expect: _Expect) -> None:
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


def _download(
    remote: Remote,
    dest: Path,
    expect: _Expect,
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
    `remote.sha256 = None` follows the `unpinned` policy with the lock file `lock` (see the
    module docstring); a pinned remote ignores the lock."""
    dest = Path(dest)
    lock = Path(lock) if lock is not None else None
    expect = _expectation(remote, lock, unpinned)
    _download(
        remote,
        dest,
        expect,
        _urllib_transfer,
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
    expect = _expectation(remote, lock, unpinned)
    _download(
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


# --------------------------------------------------------------------------------------------
# Many small files.
# --------------------------------------------------------------------------------------------


@dataclass
class FetchReport:
    """What `fetch_many` did, by file name."""

    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> error message


def _plain_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"fetch_many: {name!r} is not a plain file name")
    return name


def fetch_many(
    names: Iterable[str],
    url_template: str | None,
    dest_dir: str | Path,
    lock: str | Path,
    *,
    urls: Mapping[str, str] | None = None,
    workers: int = 8,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    unpinned: Unpinned = "record",
    show_progress: bool = True,
    flush_every: int = 200,
    max_listed: int = 10,
) -> FetchReport:
    """Download `url_template.format(name=name)` to `dest_dir/name` for every name (or
    `urls[name]`, for files with no common URL pattern, such as Google Landmarks images).

    Meant for the ~5,000 COCO val2014 images OK-VQA uses: no checksums are published, so each
    is trusted on first use and recorded in `lock` (in batches, not once per file, so the lock
    is not rewritten 5,000 times); files already present and matching the lock are skipped.
    With `unpinned="error"` every name must already be in the lock (checked before any
    download). Raises FetchManyError listing the failures once every file has been tried; the
    files fetched so far stay, with their checksums recorded, so a rerun resumes."""
    dest_dir = Path(dest_dir)
    lock = Path(lock)
    todo = [_plain_name(n) for n in dict.fromkeys(names)]
    entries = read_lock(lock)
    given = dict(urls or {})
    if url_template is None and set(todo) - set(given):
        raise ValueError("fetch_many: give url_template, or a URL in `urls` for every name")
    url_of = {
        n: given[n] if n in given else str(url_template).format(name=urllib.parse.quote(n))
        for n in todo
    }
    if unpinned == "error":
        missing = [n for n in todo if url_of[n] not in entries]
        if missing:
            raise UnpinnedError(
                f"{len(missing)} of {len(todo)} files have no checksum in the lock file {lock} "
                f"(first: {url_of[missing[0]]}) and unpinned downloads are refused "
                f"(downloads.unpinned: error). Set downloads.unpinned: record to trust the first "
                f"download and record the checksums."
            )
    elif unpinned != "record":
        raise ValueError(f"unpinned must be 'error' or 'record', not {unpinned!r}")

    pending: dict[str, tuple[str, int]] = {}
    pending_mutex = threading.Lock()

    def flush() -> None:
        with pending_mutex:
            batch = dict(pending)
            pending.clear()
        if batch:
            record_in_lock(lock, batch)

    def on_record(url: str, sha: str, size: int) -> None:
        with pending_mutex:
            pending[url] = (sha, size)
            full = len(pending) >= flush_every
        if full:
            flush()

    def one(name: str) -> str:
        url = url_of[name]
        entry = entries.get(url)
        if isinstance(entry, dict) and entry.get("sha256"):
            size = entry.get("size")
            expect = _Expect(
                str(entry["sha256"]), size if isinstance(size, int) else None, f"lock file {lock}"
            )
        else:
            expect = _Expect(None, None, "")
        return _download(
            Remote(url, expect.sha256, expect.size),
            dest_dir / name,
            expect,
            _urllib_transfer,
            retries=retries,
            timeout=timeout,
            backoff=backoff,
            show_progress=False,
            on_record=on_record,
            level=logging.DEBUG,
        )

    report = FetchReport()
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        with progress(
            total=len(todo), unit="file", desc=dest_dir.name, disable=not show_progress
        ) as bar:
            futures = {pool.submit(one, n): n for n in todo}
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    outcome = fut.result()
                except (DownloadError, OSError) as exc:
                    report.failed[name] = str(exc)
                else:
                    (report.fetched if outcome == "fetched" else report.present).append(name)
                bar.update(1)
    finally:
        # On Ctrl-C or an unexpected error, drop the queued files, let the running ones finish,
        # and keep the checksums of everything verified so far, so that a rerun resumes.
        pool.shutdown(wait=True, cancel_futures=True)
        flush()
    for names_ in (report.fetched, report.present):
        names_.sort()
    log.info(
        "%s: %d fetched, %d already present, %d failed (of %d)",
        dest_dir,
        len(report.fetched),
        len(report.present),
        len(report.failed),
        len(todo),
    )
    if report.failed:
        failed = sorted(report.failed)
        lines = [f"  {n}: {report.failed[n]}" for n in failed[:max_listed]]
        if len(failed) > max_listed:
            rest = failed[max_listed:]
            shown = ", ".join(rest[:50]) + (", ..." if len(rest) > 50 else "")
            lines.append(f"  and {len(rest)} more: {shown}")
        raise FetchManyError(
            f"{len(failed)} of {len(todo)} files could not be downloaded into {dest_dir} "
            f"(from {url_template or 'their URLs'}):\n" + "\n".join(lines) + f"\nThe "
            f"{len(report.fetched) + len(report.present)} other files are kept (checksums in "
            f"{lock}); rerun to resume.",
            report,
        )
    return report


# --------------------------------------------------------------------------------------------
# Archives.
# --------------------------------------------------------------------------------------------


def _safe_member(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or ExtractError if it is absolute or climbs out with '..'."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or path.is_absolute():
        raise ExtractError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise ExtractError(
            f"{archive}: member {name!r} contains '..' (path traversal); refusing to extract"
        )
    return path


def _check_link(archive: Path, name: str, member: PurePosixPath, target: str, hard: bool) -> None:
    """Refuse a link whose target is absolute or resolves outside the extraction directory
    (symlinks resolve from the member's directory, tar hard links from the archive root)."""
    if target.startswith("/") or PurePosixPath(target).is_absolute():
        raise ExtractError(
            f"{archive}: member {name!r} links to the absolute path {target!r}; refusing to extract"
        )
    base = [] if hard else list(member.parent.parts)
    depth = base
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not depth:
                raise ExtractError(
                    f"{archive}: member {name!r} links to {target!r}, outside the extraction "
                    f"directory; refusing to extract"
                )
            depth = depth[:-1]
        elif part != ".":
            depth = [*depth, part]


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        links: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in zf.infolist():
            rel = _safe_member(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                target = zf.read(info).decode("utf-8")
                _check_link(archive, info.filename, rel, target, hard=False)
                links.append((info, rel))
        plain = [i for i in zf.infolist() if all(i is not li for li, _ in links)]
        zf.extractall(into, members=plain)
        for info, rel in links:  # zipfile would write links as text files
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(zf.read(info).decode("utf-8"), into / rel)


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for m in members:
            rel = _safe_member(archive, m.name)
            if m.issym() or m.islnk():
                _check_link(archive, m.name, rel, m.linkname, hard=m.islnk())
            elif not (m.isfile() or m.isdir()):
                raise ExtractError(
                    f"{archive}: member {m.name!r} is a device, FIFO or other special file; "
                    f"refusing to extract"
                )
        if hasattr(tarfile, "data_filter"):  # the stdlib's own checks as a second line
            tf.extractall(into, members=members, filter="data")
        else:  # pragma: no cover - Python without the PEP 706 backport
            tf.extractall(into, members=members)


def _listing(root: Path) -> list[str]:
    """Every file and link under `root` (links are not followed), as sorted POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        out += [(here / n).relative_to(root).as_posix() for n in filenames]
        out += [
            (here / n).relative_to(root).as_posix() for n in dirnames if (here / n).is_symlink()
        ]
    return sorted(out)


def marker_path(dest_dir: str | Path) -> Path:
    """Where `extract` writes its marker by default: `<dest_dir>.extracted.json`, beside the
    directory (Snakemake creates an output's parent, so a marker inside `dest_dir` would make
    the directory exist before extraction)."""
    dest_dir = Path(dest_dir)
    return dest_dir.with_name(dest_dir.name + ".extracted.json")


def extract(
    archive: str | Path,
    dest_dir: str | Path,
    marker: str | Path | None = None,
    members: Mapping[str, str] | None = None,
    replace: bool = False,
) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) `archive` into `dest_dir`, safely and atomically;
    return the marker file (`marker`, default `marker_path(dest_dir)`).

    Members with absolute paths, '..' or links leading outside are refused (naming the member)
    before anything is written. Everything is unpacked into a temporary sibling directory,
    `members` (`{relative path: sha256}`) are verified there, and only then is it renamed onto
    `dest_dir`, so a failure leaves no `dest_dir` (or the previous one untouched). An existing
    non-empty `dest_dir` is replaced only with `replace=True`. The marker JSON lists the files
    and the archive's SHA-256; the workflow uses it as the rule's output."""
    archive = Path(archive)
    dest_dir = Path(dest_dir)
    marker = Path(marker) if marker is not None else marker_path(dest_dir)
    if not archive.is_file():
        raise ExtractError(f"{archive}: no such archive")
    if dest_dir.exists() and any(dest_dir.iterdir()) and not replace:
        raise ExtractError(
            f"{dest_dir} already exists and is not empty; delete it (or pass replace=True) to "
            f"extract {archive} there"
        )
    if zipfile.is_zipfile(archive):
        unpack = _extract_zip
    elif tarfile.is_tarfile(archive):
        unpack = _extract_tar
    else:
        raise ExtractError(f"{archive}: not a zip or tar archive")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", suffix=".tmp", dir=dest_dir.parent))
    try:
        try:
            unpack(archive, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, UnicodeDecodeError) as exc:
            raise ExtractError(f"{archive}: cannot be extracted ({exc})") from exc
        for rel, sha in sorted((members or {}).items()):
            path = tmp / rel
            if not path.is_file():
                raise ExtractError(f"{archive}: expected member {rel!r} is not in the archive")
            got = sha256_of(path)
            if got != sha:
                raise ChecksumError(
                    f"{archive}: member {rel!r} hashes to {got}, not {sha} as recorded in the "
                    f"config"
                )
        files = _listing(tmp)
        if dest_dir.exists():
            old = dest_dir.with_name(f".{dest_dir.name}.old-{os.getpid()}")
            os.rename(dest_dir, old)
            os.rename(tmp, dest_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(
        marker,
        {
            "archive": archive.name,
            "archive_sha256": sha256_of(archive),
            "dest": str(dest_dir),
            "files": files,
        },
    )
    log.info("%s: extracted %d files into %s", archive, len(files), dest_dir)
    return marker
