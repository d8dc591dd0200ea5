"""A loopback HTTP server for the download tests: a good file, a checksum mismatch, an
interrupted transfer, a flaky server, a 404, and small per-name image files."""

from __future__ import annotations

import hashlib
from http.server import BaseHTTPRequestHandler

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
