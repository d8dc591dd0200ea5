"""The lock file of trust-on-first-use checksums: recording needs a lock, a conflicting entry is
an error, and concurrent processes merge their entries without losing any."""

from __future__ import annotations

import multiprocessing

import pytest

from mmtrace.paperworld.checksums import ChecksumError, Remote, read_lock, record_in_lock
from mmtrace.paperworld.fetch import fetch


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
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert len(read_lock(lock)) == 100  # no update was lost
