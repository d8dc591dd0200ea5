"""Verified single-file downloads against a loopback HTTP server: a good file, a checksum
mismatch, an interrupted transfer, a flaky server (retried), a 404 (not retried), and an
existing file that was tampered with; unpinned files (refused, or recorded in a lock file and
then enforced), and the Google Drive path through the real gdown. No test needs the internet."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from support.loopback import PAYLOAD, SHA, Handler

from mmtrace.paperworld.checksums import (
    ChecksumError,
    DownloadError,
    Remote,
    UnpinnedError,
    read_lock,
    record_in_lock,
    sha256_of,
)
from mmtrace.paperworld.fetch import fetch, fetch_gdrive


def _fetch(url, dest, **kw):
    return fetch(Remote(url, SHA, len(PAYLOAD)), dest, backoff=0.01, show_progress=False, **kw)


def test_good_download_then_cached(server, tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    assert _fetch(f"{server}/good", dest) == dest
    assert dest.read_bytes() == PAYLOAD and sha256_of(dest) == SHA
    before = Handler.calls["/good"]
    _fetch(f"{server}/good", dest)  # verified, not downloaded again
    assert Handler.calls["/good"] == before
    assert not dest.with_name("file.bin.part").exists()


def test_checksum_mismatch_is_rejected_and_nothing_written(server, tmp_path):
    dest = tmp_path / "t.bin"
    with pytest.raises(ChecksumError, match="tampered") as err:
        _fetch(f"{server}/tampered", dest, retries=2)
    assert SHA in str(err.value) and "not written" in str(err.value)
    assert not dest.exists() and not dest.with_name("t.bin.part").exists()
    assert Handler.calls["/tampered"] == 2  # retried once (corruption in transit)


def test_interrupted_transfer_is_rejected(server, tmp_path):
    dest = tmp_path / "cut.bin"
    with pytest.raises(DownloadError, match="cut.bin"):
        _fetch(f"{server}/truncated", dest, retries=2)
    assert not dest.exists() and not dest.with_name("cut.bin.part").exists()


def test_flaky_server_is_retried(server, tmp_path):
    dest = tmp_path / "flaky.bin"
    _fetch(f"{server}/flaky", dest)
    assert dest.read_bytes() == PAYLOAD and Handler.calls["/flaky"] == 2


def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        _fetch(f"{server}/missing", tmp_path / "m.bin", retries=3)
    assert Handler.calls["/missing"] == 1


def test_existing_tampered_file_is_reported_not_overwritten(server, tmp_path):
    dest = tmp_path / "old.bin"
    dest.write_bytes(PAYLOAD[:1000])
    with pytest.raises(ChecksumError, match="Delete it"):
        _fetch(f"{server}/good", dest)
    assert dest.read_bytes() == PAYLOAD[:1000]


# --- unpinned files: refused, or trusted on first use and recorded in a lock file ------------


def _unpinned(url, dest, lock, **kw):
    return fetch(Remote(url, None), dest, backoff=0.01, show_progress=False, lock=lock, **kw)


def test_unpinned_is_refused_before_download(server, tmp_path):
    url = f"{server}/unpinned-refused"
    with pytest.raises(UnpinnedError, match="no sha256 in the config") as err:
        _unpinned(url, tmp_path / "u.bin", tmp_path / "lock.json")
    assert url in str(err.value) and "unpinned: record" in str(err.value)
    assert "/unpinned-refused" not in Handler.calls  # failed before any download
    assert not (tmp_path / "lock.json").exists() and not (tmp_path / "u.bin").exists()


def test_unpinned_record_writes_lock_then_enforces_it(server, tmp_path, caplog):
    url, dest, lock = f"{server}/tofu/good", tmp_path / "f.bin", tmp_path / "locks" / "lock.json"
    record_in_lock(lock, {"http://example.org/other": ("ab" * 32, 3)})  # kept by the merge
    with caplog.at_level(logging.WARNING, logger="mmtrace.paperworld.fetch"):
        _unpinned(url, dest, lock, unpinned="record")
    assert dest.read_bytes() == PAYLOAD
    assert "trusting this first download" in caplog.text and SHA in caplog.text
    text = lock.read_text()
    data = json.loads(text)
    assert data[url] == {"sha256": SHA, "size": len(PAYLOAD)}
    assert data["http://example.org/other"]["sha256"] == "ab" * 32
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"  # sorted, deterministic

    # Second run: verified against the lock, no download; the lock entry is a pin even under
    # the strict policy.
    before = Handler.calls["/tofu/good"]
    _unpinned(url, dest, lock, unpinned="error")
    assert Handler.calls["/tofu/good"] == before

    # A file modified after recording is detected against the lock and left alone.
    dest.write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(ChecksumError, match="Delete it") as err:
        _unpinned(url, dest, lock, unpinned="record")
    assert str(lock) in str(err.value) and SHA in str(err.value)
    assert dest.read_bytes().endswith(b"x")
    dest.unlink()
    _unpinned(url, dest, lock, unpinned="record")  # downloaded again, checked against the lock
    assert dest.read_bytes() == PAYLOAD and json.loads(lock.read_text()) == data


def test_lock_catches_a_server_that_changed(server, tmp_path):
    url, dest, lock = f"{server}/tofu/flip", tmp_path / "flip.bin", tmp_path / "lock.json"
    _unpinned(url, dest, lock, unpinned="record")  # first response: PAYLOAD
    dest.unlink()
    with pytest.raises(ChecksumError, match="not written") as err:
        _unpinned(url, dest, lock, unpinned="record", retries=2)  # now: different bytes
    bad = hashlib.sha256(PAYLOAD[:-1] + b"x").hexdigest()
    assert SHA in str(err.value) and bad in str(err.value) and str(lock) in str(err.value)
    assert not dest.exists() and read_lock(lock)[url]["sha256"] == SHA


def test_pinned_remote_ignores_the_lock(server, tmp_path):
    url, lock = f"{server}/tofu/pinned", tmp_path / "lock.json"
    record_in_lock(lock, {url: ("0" * 64, 1)})
    fetch(Remote(url, SHA, len(PAYLOAD)), tmp_path / "p.bin", lock=lock, show_progress=False)
    assert sha256_of(tmp_path / "p.bin") == SHA


# --- Google Drive archives, through the real gdown -------------------------------------------


def _gdrive(url, dest, sha=SHA, **kw):
    kw.setdefault("backoff", 0.01)
    return fetch_gdrive("FILEID", dest, sha, size=len(PAYLOAD), url=url, show_progress=False, **kw)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)


def test_gdrive_downloads_through_gdown_and_verifies(server, tmp_path):
    dest = tmp_path / "known.zip"
    assert _gdrive(f"{server}/gd/good", dest) == dest
    assert dest.read_bytes() == PAYLOAD and _leftovers(tmp_path) == []
    before = Handler.calls["/gd/good"]
    _gdrive(f"{server}/gd/good", dest)  # verified, not downloaded again
    assert Handler.calls["/gd/good"] == before


def test_gdrive_checksum_mismatch_names_both_digests(server, tmp_path):
    dest = tmp_path / "bad.zip"
    with pytest.raises(ChecksumError) as err:
        _gdrive(f"{server}/gd/tampered", dest, retries=2)
    assert SHA in str(err.value) and hashlib.sha256(PAYLOAD[:-1] + b"x").hexdigest() in str(
        err.value
    )
    assert Handler.calls["/gd/tampered"] == 2
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_gdrive_interrupted_transfer(server, tmp_path):
    dest = tmp_path / "cut.zip"
    with pytest.raises(DownloadError, match="cut.zip") as err:
        _gdrive(f"{server}/gd/truncated", dest, retries=2)
    assert "drive.google.com/file/d/FILEID" in str(err.value)  # how to fetch it by hand
    assert Handler.calls["/gd/truncated"] == 2
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_gdrive_unpinned_follows_the_lock_policy(server, tmp_path):
    url, lock = f"{server}/gd/tofu", tmp_path / "lock.json"
    with pytest.raises(UnpinnedError):
        _gdrive(url, tmp_path / "a.zip", sha=None, lock=lock)
    _gdrive(url, tmp_path / "a.zip", sha=None, lock=lock, unpinned="record")
    assert read_lock(lock)[url] == {"sha256": SHA, "size": len(PAYLOAD)}


def test_gdrive_production_path_calls_gdown_with_the_drive_url(tmp_path, monkeypatch):
    import gdown

    seen = {}

    def fake_download(url, output, quiet, **kw):
        seen["url"] = url
        Path(output).write_bytes(PAYLOAD)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    fetch_gdrive("1AbC_xyz", tmp_path / "m.zip", SHA, show_progress=False)
    assert seen["url"] == "https://drive.google.com/uc?id=1AbC_xyz"
    assert (tmp_path / "m.zip").read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.org/x.csv", "http://example.org/x.csv", "https:///x"],
)
def test_only_https_is_downloaded(url, tmp_path):
    """A checksum protects pinned files only: unpinned ones must come over an authenticated
    channel, and file:// would read the local disk."""
    with pytest.raises(ValueError, match="only https://"):
        _fetch(url, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_config_refuses_insecure_sources_and_image_urls():
    from mmtrace.config import Downloads, Source

    with pytest.raises(ValueError, match="only https://"):
        Source(url="file:///etc/passwd", file="x.csv")
    with pytest.raises(ValueError, match="only https://"):
        Downloads(coco_url="http://images.cocodataset.org/val2014/{name}")
    assert Downloads().coco_url.startswith("https://")
    assert Source(url="http://127.0.0.1:8000/x.csv", file="x.csv").url  # a local stand-in


def test_landmark_image_urls_are_fetched_over_https():
    from mmtrace.paperworld.images import secure

    assert secure("http://upload.wikimedia.org/a.jpg") == "https://upload.wikimedia.org/a.jpg"
    assert secure("https://x.org/a.jpg") == "https://x.org/a.jpg"
    assert secure("http://127.0.0.1:9/a.jpg") == "http://127.0.0.1:9/a.jpg"
