"""The one safetensors-only policy shared by fetching (hub snapshots) and loading (local
checkpoints): what it admits, what it refuses, and that both sides read the same lists."""

from __future__ import annotations

import inspect

import pytest

from mmtrace.models import formats, hub


def test_allow_patterns_admit_no_pickle_or_code():
    assert all(formats.admits_refused(p) is None for p in formats.ALLOW_PATTERNS)
    assert formats.admits_refused("*") == "pytorch_model.bin"
    assert formats.admits_refused("*.py") == "model.py"


def test_refused_names_are_pickles_and_remote_code():
    for name in ("pytorch_model.bin", "model.pt", "x.pth", "x.pkl", "x.ckpt", "modeling_x.py"):
        assert formats.is_refused(name), name
    for name in ("model.safetensors", "config.json", "tokenizer.model", "merges.txt"):
        assert not formats.is_refused(name), name
    # code is refused for download, but is not a pickle of weights
    assert formats.pickles(["modeling_x.py", "b.bin", "a.pt", "c.json"]) == ["a.pt", "b.bin"]


def test_refuse_pickle_checks_local_checkpoints(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    formats.refuse_pickle(tmp_path)  # no weights at all: left to the loader
    formats.refuse_pickle(tmp_path / "org--name")  # not a directory (a hub id): not checked here
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"pickle.*pytorch_model\.bin"):
        formats.refuse_pickle(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    formats.refuse_pickle(tmp_path)  # safetensors present: the pickle is never read


def test_hub_snapshots_fetch_what_the_policy_allows():
    default = inspect.signature(hub.snapshot).parameters["allow_patterns"].default
    assert default is formats.ALLOW_PATTERNS
