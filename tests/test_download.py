"""The real download code against a loopback HTTP server: a good file, a checksum mismatch, an
interrupted transfer, a flaky server (retried), a 404 (not retried), and an existing file that
was tampered with; unpinned files (refused, or recorded in a lock file and then enforced), the
Google Drive path through the real gdown, many small files in a thread pool, and safe atomic
archive extraction. No test needs the internet."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmtrace.download import (
    ChecksumError,
    DownloadError,
    ExtractError,
    FetchManyError,
    Remote,
    UnpinnedError,
    extract,
    fetch,
    fetch_gdrive,
    fetch_many,
    read_lock,
    record_in_lock,
    sha256_of,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def image_bytes(name: str) -> bytes:
    """What the server sends for /img/<name>: small, distinct per name."""
    return hashlib.sha256(name.encode()).digest() * 64


class Handler(BaseHTTPRequestHandler):
    calls: dict[str, int] = {}
    missing_images: set[str] = set()  # /img/<name> answered with 404 (tests change it)

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        n = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.path.startswith("/img/"):
            name = self.path[len("/img/") :]
            if name in self.missing_images:
                self.send_error(404)
                return
            body = image_bytes(name)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path == "/flaky" and n == 1:
            self.send_error(503)
            return
        body = PAYLOAD
        if self.path.endswith("/tampered") or (self.path.endswith("/flip") and n > 1):
            body = PAYLOAD[:-1] + b"x"
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.path.endswith("/truncated"):
            self.wfile.write(body[: len(body) // 3])  # then the connection closes
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


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
    with caplog.at_level(logging.WARNING, logger="mmtrace.download"):
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


def test_record_requires_a_lock_and_conflicts_are_errors(tmp_path):
    with pytest.raises(ValueError, match="lock file"):
        fetch(Remote("http://127.0.0.1:9/x", None), tmp_path / "x", unpinned="record")
    lock = tmp_path / "lock.json"
    record_in_lock(lock, {"http://h/a": ("a" * 64, 1)})
    with pytest.raises(ChecksumError, match="already records"):
        record_in_lock(lock, {"http://h/a": ("b" * 64, 1)})


def _record_many(lock: str, worker: int) -> None:
    for i in range(25):
        record_in_lock(lock, {f"http://h/{worker}/{i}": (f"{worker:02d}" * 32, i)})


def test_concurrent_processes_merge_their_lock_entries(tmp_path):
    lock = tmp_path / "lock.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(str(lock), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=20)
    assert all(p.exitcode == 0 for p in procs)
    assert len(read_lock(lock)) == 100  # no update was lost


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


# --- many small files ------------------------------------------------------------------------


def _many(server, names, dest_dir, lock, **kw):
    return fetch_many(
        names, f"{server}/img/{{name}}", dest_dir, lock, backoff=0.01, show_progress=False, **kw
    )


def test_fetch_many_reports_failures_and_resumes(server, tmp_path):
    names = [f"COCO_val2014_{i:012d}.jpg" for i in range(30)]
    gone = set(names[3:6])
    Handler.missing_images.update(gone)
    dest_dir, lock = tmp_path / "coco", tmp_path / "coco.lock.json"
    with pytest.raises(FetchManyError) as err:
        _many(server, names, dest_dir, lock, workers=4, flush_every=7)
    msg = str(err.value)
    assert "3 of 30 files" in msg and all(n in msg for n in gone) and "404" in msg
    assert set(err.value.report.failed) == gone and len(err.value.report.fetched) == 27
    entries = read_lock(lock)
    assert len(entries) == 27  # every verified file is recorded, also in the failing run
    for n in set(names) - gone:
        assert (dest_dir / n).read_bytes() == image_bytes(n)
        assert entries[f"{server}/img/{n}"]["sha256"] == hashlib.sha256(image_bytes(n)).hexdigest()
    assert not any(p.name.endswith(".part") for p in dest_dir.iterdir())

    # Rerun once the files are back: only the missing ones are downloaded.
    Handler.missing_images.difference_update(gone)
    calls = dict(Handler.calls)
    report = _many(server, names, dest_dir, lock)
    assert sorted(report.fetched) == sorted(gone) and len(report.present) == 27
    assert not report.failed
    assert all(Handler.calls[f"/img/{n}"] == calls[f"/img/{n}"] for n in set(names) - gone)
    assert len(read_lock(lock)) == 30

    # Strict policy: everything is in the lock now, so it passes without downloading.
    assert len(_many(server, names, dest_dir, lock, unpinned="error").present) == 30


def test_fetch_many_detects_a_tampered_present_file(server, tmp_path):
    names = ["a.jpg", "b.jpg"]
    dest_dir, lock = tmp_path / "img", tmp_path / "lock.json"
    _many(server, names, dest_dir, lock)
    (dest_dir / "b.jpg").write_bytes(b"not an image")
    with pytest.raises(FetchManyError, match="Delete it") as err:
        _many(server, names, dest_dir, lock)
    assert list(err.value.report.failed) == ["b.jpg"] and err.value.report.present == ["a.jpg"]


def test_fetch_many_strict_policy_fails_before_downloading(server, tmp_path):
    with pytest.raises(UnpinnedError, match="2 of 2 files"):
        _many(
            server,
            ["strict1.jpg", "strict2.jpg"],
            tmp_path / "d",
            tmp_path / "l.json",
            unpinned="error",
        )
    assert "/img/strict1.jpg" not in Handler.calls
    with pytest.raises(ValueError, match="plain file name"):
        _many(server, ["../escape.jpg"], tmp_path / "d", tmp_path / "l.json")


# --- archives --------------------------------------------------------------------------------

FILES = {"images/q1.jpg": b"\xff\xd8 one", "images/sub/q2.jpg": b"\xff\xd8 two", "README": b"hi"}


def _zip(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


def _no_temp_dirs(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
def test_extract_zip_and_tar(make, tmp_path):
    archive = make(tmp_path / "a.arc", FILES, links={"images/link.jpg": "q1.jpg"})
    out = tmp_path / "raw" / "known"
    marker = extract(
        archive, out, members={"images/q1.jpg": hashlib.sha256(FILES["images/q1.jpg"]).hexdigest()}
    )
    assert marker == tmp_path / "raw" / "known.extracted.json"
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
    assert (out / "images/link.jpg").is_symlink()
    info = json.loads(marker.read_text())
    assert info["files"] == sorted([*FILES, "images/link.jpg"])
    assert info["archive_sha256"] == sha256_of(archive)
    assert _no_temp_dirs(out.parent)


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
@pytest.mark.parametrize(
    "bad, why",
    [
        ({"../evil.txt": b"x"}, "path traversal"),
        ({"ok/../../evil.txt": b"x"}, "path traversal"),
        ({"/etc/evil.txt": b"x"}, "absolute path"),
    ],
)
def test_extract_refuses_traversal(make, bad, why, tmp_path):
    archive = make(tmp_path / "evil.arc", {"fine.txt": b"ok", **bad})
    out = tmp_path / "raw" / "x"
    with pytest.raises(ExtractError, match=why) as err:
        extract(archive, out)
    assert repr(next(iter(bad))) in str(err.value)  # names the member
    assert not out.exists() and _no_temp_dirs(out.parent)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "raw" / "evil.txt").exists()


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("target", ["../../outside", "/etc/passwd", "sub/../../../x"])
def test_extract_refuses_links_outside(make, target, tmp_path):
    archive = make(tmp_path / "l.arc", {"a.txt": b"a"}, links={"sub/link": target})
    with pytest.raises(ExtractError, match="'sub/link'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_extraction_leaves_no_directory(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", FILES)
    out = tmp_path / "raw" / "known"
    with pytest.raises(ChecksumError, match="images/q1.jpg"):  # fails after unpacking
        extract(archive, out, members={"images/q1.jpg": "0" * 64})
    assert not out.exists() and _no_temp_dirs(out.parent)
    with pytest.raises(ExtractError, match="not in the archive"):
        extract(archive, out, members={"nope.jpg": "0" * 64})
    assert not out.exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_zip(tmp_path / "ok.zip", FILES).read_bytes()[:-60])
    with pytest.raises(ExtractError, match="broken.zip"):
        extract(broken, out)
    assert not out.exists() and _no_temp_dirs(out.parent)


def test_extract_replaces_only_when_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty directory (as Snakemake may create) is fine
    extract(_zip(tmp_path / "a.zip", {"a.txt": b"1"}), out)
    archive2 = _zip(tmp_path / "b.zip", {"b.txt": b"2"})
    with pytest.raises(ExtractError, match="not empty"):
        extract(archive2, out)
    assert (out / "a.txt").exists()
    extract(archive2, out, replace=True)
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"] and _no_temp_dirs(tmp_path)


def test_fetch_many_with_explicit_urls(server, tmp_path):
    urls = {"1.jpg": f"{server}/img/x1.jpg", "2.jpg": f"{server}/img/x2.jpg"}
    report = fetch_many(
        sorted(urls), None, tmp_path / "lm", tmp_path / "l.json", urls=urls, show_progress=False
    )
    assert report.fetched == ["1.jpg", "2.jpg"]
    assert (tmp_path / "lm" / "2.jpg").read_bytes() == image_bytes("x2.jpg")
    assert set(read_lock(tmp_path / "l.json")) == set(urls.values())
    with pytest.raises(ValueError, match="url_template"):
        fetch_many(["3.jpg"], None, tmp_path / "lm", tmp_path / "l.json", urls=urls)
