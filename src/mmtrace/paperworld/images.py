"""Many small image files, fetched one by one: the COCO val2014 images OK-VQA's questions use
(not the 6 GB zip) and the Google Landmarks v2 images of the long-tail split, from their
original URLs. Each file is verified as `fetch` verifies one (`fetch.verified_download`), its
checksum trusted on first use and recorded in a lock file (`checksums`).
"""

from __future__ import annotations

import csv
import logging
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from mmtrace.config.paper import LOOPBACK
from mmtrace.logs import progress
from mmtrace.paperworld.checksums import (
    DownloadError,
    Expect,
    Remote,
    Unpinned,
    UnpinnedError,
    read_lock,
    record_in_lock,
)
from mmtrace.paperworld.fetch import urllib_transfer, verified_download

log = logging.getLogger(__name__)


class FetchManyError(DownloadError):
    """Some files of a `fetch_many` batch failed; `report` says which (the rest are kept)."""

    def __init__(self, message: str, report: FetchReport):
        super().__init__(message)
        self.report = report


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
            expect = Expect(
                str(entry["sha256"]), size if isinstance(size, int) else None, f"lock file {lock}"
            )
        else:
            expect = Expect(None, None, "")
        return verified_download(
            Remote(url, expect.sha256, expect.size),
            dest_dir / name,
            expect,
            urllib_transfer,
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


def okvqa_image_names(okvqa_csv: Path) -> list[str]:
    """The distinct COCO file names the release's okvqa.csv refers to, sorted."""
    with open(okvqa_csv, encoding="utf-8", newline="") as fh:
        names = {Path(row["image_url"]).name for row in csv.DictReader(fh) if row["image_url"]}
    return sorted(n for n in names if n)


def secure(url: str) -> str:
    """An image URL as fetched: `http://` becomes `https://` (the index's hosts, Wikimedia and
    Flickr, serve both; plain http would let anyone on the path swap the unpinned image), except
    on the loopback interface; any other scheme stays and is refused by the downloader."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        return urllib.parse.urlunsplit(("https", *parts[1:]))
    return url


def landmark_urls(index_csv: Path, ids: set[str]) -> dict[str, str]:
    """Original image URLs (over https, see `secure`) of the given Google Landmarks v2 ids, from
    its train.csv (`id,url,landmark_id`), read as a stream (the file has ~4M rows)."""
    found: dict[str, str] = {}
    with open(index_csv, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("id") in ids:
                found[row["id"]] = secure(row["url"])
    return found
