"""Pinned Hugging Face snapshots, offline, against a hand-built local cache in the layout
huggingface_hub uses (`models--org--name/refs/<ref>`, `snapshots/<commit>/...`): found by commit
or by ref, a clear error when missing, and a snapshot with only pickle weights refused. No
network: offline mode makes huggingface_hub look in the cache only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mmtrace.models.hub import SnapshotError, snapshot, write_marker

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_cache(root: Path, repo: str, files: dict[str, bytes], ref: str = "main") -> Path:
    """A cache entry as huggingface_hub writes it (files as plain files, not blob links)."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(COMMIT)
    snap = folder / "snapshots" / COMMIT
    for name, data in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_bytes(data)
    return snap


GOOD = {"config.json": b"{}", "model.safetensors": b"\0" * 16, "tokenizer.json": b"{}"}


def test_offline_snapshot_by_commit_and_marker(tmp_path):
    snap = make_cache(tmp_path / "hub", "org/name", GOOD)
    path = snapshot("org/name", COMMIT, cache_dir=tmp_path / "hub", offline=True)
    assert path.resolve() == snap.resolve()
    marker = write_marker(tmp_path / "out" / "model.json", "org/name", COMMIT, path)
    text = marker.read_text()
    info = json.loads(text)
    assert info["commit"] == COMMIT and info["repo_id"] == "org/name"
    assert info["files"] == sorted(GOOD) and info["revision"] == COMMIT
    assert text == json.dumps(info, sort_keys=True, indent=2) + "\n"


def test_env_offline_and_a_ref_warns(tmp_path, monkeypatch, caplog):
    make_cache(tmp_path / "hub", "org/name", GOOD)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="mmtrace.models.hub"):
        path = snapshot("org/name", "main", cache_dir=tmp_path / "hub")  # offline via env
    assert path.name == COMMIT
    assert "not a commit hash" in caplog.text


def test_missing_snapshot_says_what_to_do(tmp_path):
    make_cache(tmp_path / "hub", "org/name", GOOD)
    with pytest.raises(SnapshotError, match="run the download rule on a node with internet"):
        snapshot("org/other", COMMIT, cache_dir=tmp_path / "hub", offline=True)
    with pytest.raises(SnapshotError, match="org/name@" + "f" * 40):
        snapshot("org/name", "f" * 40, cache_dir=tmp_path / "hub", offline=True)


def test_pickle_only_snapshot_is_refused(tmp_path):
    make_cache(tmp_path / "hub", "org/old", {"config.json": b"{}", "pytorch_model.bin": b"x"})
    with pytest.raises(SnapshotError, match="no \\*.safetensors") as err:
        snapshot("org/old", COMMIT, cache_dir=tmp_path / "hub", offline=True)
    assert "pytorch_model.bin" in str(err.value) and "pickles are refused" in str(err.value)
    make_cache(tmp_path / "hub", "org/noconf", {"model.safetensors": b"x"})
    with pytest.raises(SnapshotError, match="no config.json"):
        snapshot("org/noconf", COMMIT, cache_dir=tmp_path / "hub", offline=True)


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="revision"):
        snapshot("org/name", "", cache_dir=tmp_path, offline=True)
    with pytest.raises(ValueError, match="pytorch_model.bin"):
        snapshot("org/name", COMMIT, cache_dir=tmp_path, allow_patterns=["*"], offline=True)


def _pickled_llama(tmp_path: Path):
    """A tiny Llama as lmsys/vicuna-7b-v1.5 ships: config, tokenizer and pytorch_model.bin."""
    import torch
    from support import tiny_models
    from support.tiny_checkpoints import WORDS, word_tokenizer

    model = tiny_models.llama()
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    word_tokenizer(WORDS, image_token=False).save_pretrained(src)
    torch.save(model.state_dict(), src / "pytorch_model.bin")
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    return model, files


def test_pickled_weights_are_converted_only_on_opt_in(tmp_path):
    """`weights: convert_pickle`: the shards are read by torch's weights-only unpickler and
    rewritten as safetensors; the converted model gives the original's logits."""
    import torch

    from mmtrace.models.hub import convert_pickled
    from mmtrace.models.loading import load

    model, files = _pickled_llama(tmp_path)
    make_cache(tmp_path / "hub", "lmsys/vicuna", files)
    with pytest.raises(SnapshotError, match="pickles are refused"):  # no opt-in
        snapshot("lmsys/vicuna", COMMIT, cache_dir=tmp_path / "hub", offline=True)
    snap = snapshot(
        "lmsys/vicuna", COMMIT, cache_dir=tmp_path / "hub", offline=True, pickled_weights=True
    )
    out = convert_pickled(snap, tmp_path / "converted")
    assert not list(out.glob("*.bin")) and list(out.glob("*.safetensors"))
    loaded = load(out, "llm", device="cpu")
    ids = torch.tensor([[1, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.equal(loaded.model(input_ids=ids).logits, model(input_ids=ids).logits)


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    import pickle

    from mmtrace.models.hub import convert_pickled

    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Exploit()}))
    with pytest.raises(SnapshotError, match="weights-only unpickler"):
        convert_pickled(snap, tmp_path / "converted")
    assert not (tmp_path / "converted").exists()
    assert not (tmp_path / "converted.tmp").exists()
