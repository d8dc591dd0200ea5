"""The download tests' loopback server (see loopback.py), one per test module."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest
from support.loopback import Handler


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
