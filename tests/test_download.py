"""The real download code against a loopback HTTP server: a good file, a checksum mismatch, an
interrupted transfer, a flaky server (retried), a 404 (not retried), and an existing file that
was tampered with. No test needs the internet."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmtrace.download import ChecksumError, DownloadError, Remote, fetch, sha256_of

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    calls: dict[str, int] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        n = self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path == "/flaky" and n == 1:
            self.send_error(503)
            return
        body = PAYLOAD
        if self.path == "/tampered":
            body = PAYLOAD[:-1] + b"x"
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.path == "/truncated":
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
