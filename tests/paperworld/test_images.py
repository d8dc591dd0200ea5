"""Many small files in a thread pool against a loopback HTTP server: failures reported and
resumed, a tampered file detected, the strict policy checked before any download, explicit
URLs."""

from __future__ import annotations

import hashlib

import pytest
from support.loopback import Handler, image_bytes

from mmtrace.paperworld.checksums import UnpinnedError, read_lock
from mmtrace.paperworld.images import FetchManyError, fetch_many

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
