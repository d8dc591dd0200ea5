"""Headless Chromium for the HTML report test: Debian's `chromium` (`.ci/run` installs it with
apt), run with a fresh profile and everything that would reach the network switched off; the
test reads the DOM after the report's scripts have run.

No wall-clock limit by default (as for the workflow runs); MMTRACE_TEST_TIMEOUT bounds it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=20000",  # let the report's scripts finish (virtual, not wall-clock)
]


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium: apt-get install chromium (.ci/run installs it)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    limit = float(os.environ.get("MMTRACE_TEST_TIMEOUT", "0")) or None
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=limit,
    )


def render(browser: str, page: Path, profile: Path) -> str:
    """The DOM of `page` (a local file) after its scripts ran."""
    proc = _run(browser, profile, "--dump-dom", page.resolve().as_uri())
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]
    return proc.stdout


def screenshot(browser: str, page: Path, profile: Path, out: Path, size: str = "1280,900") -> Path:
    proc = _run(
        browser,
        profile,
        f"--screenshot={out.resolve()}",
        f"--window-size={size}",
        page.resolve().as_uri(),
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    return out
