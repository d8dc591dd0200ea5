"""The paper world's model step (`mmtrace.steps.paper_models.fetch_model`) called directly with
its rule's keywords, offline, against a hand-built Hugging Face cache: the marker the model jobs
read, and a pickle-only snapshot refused before any marker is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import constants

from mmtrace.models.hub import SnapshotError, read_marker
from mmtrace.steps.paper_models import fetch_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
GOOD = {"config.json": b"{}", "model.safetensors": b"\0" * 16, "tokenizer.json": b"{}"}


def cache_put(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A snapshot of `repo` at COMMIT, with refs/main pointing at it, as huggingface_hub keeps."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    snap = folder / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def spec(repo: str) -> dict:
    return {"role": "mllm", "source": "hub", "repo": repo, "revision": COMMIT}


def test_fetch_model_records_the_pinned_snapshot(offline_cache, tmp_path):
    snap = cache_put(offline_cache, "org/name", GOOD)
    marker = tmp_path / "models" / "m" / "snapshot.json"
    fetch_model(model="m", spec=spec("org/name"), marker=marker)
    info = json.loads(marker.read_text())
    assert info["commit"] == COMMIT and info["repo_id"] == "org/name"
    assert info["files"] == sorted(GOOD) and info["revision"] == COMMIT
    assert read_marker(marker).resolve() == snap.resolve()  # what the model jobs load


def test_fetch_model_refuses_a_pickle_only_snapshot(offline_cache, tmp_path):
    cache_put(offline_cache, "org/old", {"config.json": b"{}", "pytorch_model.bin": b"x"})
    marker = tmp_path / "models" / "old" / "snapshot.json"
    with pytest.raises(SnapshotError, match="pickles are refused"):
        fetch_model(model="old", spec=spec("org/old"), marker=marker)
    assert not marker.exists()
