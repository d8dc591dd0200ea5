"""Pinned Hugging Face model snapshots for the paper world (`--config world=paper`).

The analyses must run on exactly the weights the results were computed with, so every model is
fetched at an explicit `revision` (ideally a 40-hex commit: branches and tags can move) and only
in formats that cannot execute code when loaded, as `formats` says: safetensors weights, JSON
configs and tokenizer files, never `*.bin` / `*.pt` / other pickles. Compute nodes of a cluster
usually have no internet: the download rule runs once on a node that has it, and the jobs then
load the snapshot with `HF_HUB_OFFLINE=1` (or `offline=True`), failing with a clear message if
it is missing.
The cache location follows the usual `HF_HOME` / `HF_HUB_CACHE` unless `cache_dir` is given.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from mmtrace.io import write_json
from mmtrace.models import formats

log = logging.getLogger(__name__)

COMMIT = re.compile(r"^[0-9a-f]{40}$")


class SnapshotError(RuntimeError):
    """A snapshot is missing from the cache, incomplete, or has no usable (safe) weights."""


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.strip().upper() in {"1", "ON", "YES", "TRUE"} or bool(constants.HF_HUB_OFFLINE)


def snapshot(
    repo_id: str,
    revision: str,
    cache_dir: str | Path | None = None,
    allow_patterns: Sequence[str] = formats.ALLOW_PATTERNS,
    offline: bool | None = None,
    pickled_weights: bool = False,
) -> Path:
    """Download (or, offline, find in the cache) `repo_id` at `revision`; return its directory.

    `offline=None` follows `HF_HUB_OFFLINE` / `TRANSFORMERS_OFFLINE`. The snapshot must contain
    a config.json and at least one *.safetensors file, unless `pickled_weights` (a model's
    explicit `weights: convert_pickle`): then its `pytorch_model*.bin` shards are fetched too,
    for `convert_pickled` to turn into safetensors; nothing ever loads them as they are."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
    )

    if not revision:
        raise ValueError(f"{repo_id}: a revision (commit hash or tag) is required")
    for pattern in allow_patterns:
        bad = formats.admits_refused(pattern)
        if bad:
            raise ValueError(
                f"{repo_id}: allow pattern {pattern!r} would admit {bad} (pickle or code); "
                f"only safetensors, JSON and tokenizer files are downloaded"
            )
    if not COMMIT.match(revision):
        log.warning(
            "%s: revision %r is not a commit hash; a branch or tag can move, so the weights "
            "may change. Pin the 40-hex commit in the config.",
            repo_id,
            revision,
        )
    local_only = _offline(offline)
    where = cache_dir if cache_dir is not None else "the Hugging Face cache (HF_HUB_CACHE)"
    try:
        path = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=str(cache_dir) if cache_dir is not None else None,
                allow_patterns=list(allow_patterns)
                + (list(formats.PICKLED_WEIGHTS) if pickled_weights else []),
                ignore_patterns=[
                    p for p in formats.REFUSED_PATTERNS if not pickled_weights or p != "*.bin"
                ],
                local_files_only=local_only,
            )
        )
    except (LocalEntryNotFoundError, IncompleteSnapshotError) as exc:
        raise SnapshotError(
            f"{repo_id}@{revision} is not (completely) in {where}"
            + (" and offline mode is on" if local_only else "")
            + ": run the download rule on a node with internet first "
            f"(the jobs then use it with HF_HUB_OFFLINE=1). ({type(exc).__name__}: {exc})"
        ) from exc
    except HfHubHTTPError as exc:
        raise SnapshotError(f"{repo_id}@{revision}: the Hub refused the download: {exc}") from exc
    if not pickled_weights:
        check_snapshot(path, repo_id, revision)
    log.info("%s@%s: snapshot at %s", repo_id, revision, path)
    return path


def convert_pickled(snapshot_dir: Path, out_dir: Path) -> Path:
    """Turn a snapshot's `pytorch_model*.bin` shards into safetensors in `out_dir`, next to
    copies of its other (non-pickle) files, and return `out_dir`.

    Some checkpoints the paper used (lmsys/vicuna-7b-v1.5) ship only pickled weights. They are
    read with `torch.load(weights_only=True)`, torch's restricted unpickler that rebuilds tensors
    and plain containers and refuses any other class or function, so a tampered file fails
    instead of running code. Written atomically (a temporary sibling, then a rename)."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from mmtrace.io import write_json

    shards = sorted(snapshot_dir.glob("pytorch_model*.bin"))
    if not shards:
        raise SnapshotError(f"{snapshot_dir}: no pytorch_model*.bin shards to convert")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    for i, shard in enumerate(shards, start=1):
        try:
            state = torch.load(shard, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # torch raises UnpicklingError or RuntimeError variants
            shutil.rmtree(tmp, ignore_errors=True)
            raise SnapshotError(
                f"{shard}: refused by torch's weights-only unpickler (not plain tensors): {exc}"
            ) from exc
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        # safetensors refuses tensors sharing memory: give each its own contiguous copy
        save_file(
            {k: v.detach().contiguous().clone() for k, v in state.items()},
            str(tmp / name),
            metadata={"format": "pt"},
        )
        weight_map.update(dict.fromkeys(state, name))
        log.info("converted %s -> %s (%d tensors)", shard.name, name, len(state))
    for f in sorted(snapshot_dir.iterdir()):
        pickle = formats.is_refused(f.name)
        if f.is_file() and not pickle and f.name != "pytorch_model.bin.index.json":
            shutil.copyfile(f, tmp / f.name)
    write_json(tmp / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def check_snapshot(path: Path, repo_id: str, revision: str) -> None:
    """Refuse a snapshot without config.json or safetensors weights (e.g. one that only ships
    pytorch_model.bin, which is a pickle and is never loaded)."""
    names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    problems = []
    if not (path / "config.json").is_file():
        problems.append("no config.json")
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if formats.is_refused(n)]
        problems.append(
            "no *.safetensors weights"
            + (f" (only {', '.join(pickles[:3])}: pickles are refused)" if pickles else "")
        )
    if problems:
        raise SnapshotError(
            f"{repo_id}@{revision} at {path}: {' and '.join(problems)}; pick a revision that "
            f"ships safetensors weights (many repos have a refs/pr/N or later commit that does)"
        )


def write_marker(
    path: str | Path,
    repo_id: str,
    revision: str,
    snapshot_dir: str | Path,
    commit: str | None = None,
) -> Path:
    """Write the small JSON the workflow uses as the download rule's output: which repo and
    revision, the commit it resolved to, where the snapshot is, and its files (sorted keys,
    atomic write, so an interrupted rule leaves no marker)."""
    snapshot_dir = Path(snapshot_dir)
    files = sorted(
        p.relative_to(snapshot_dir).as_posix() for p in snapshot_dir.rglob("*") if p.is_file()
    )
    if commit is None:  # a hub snapshot's folder is named after its commit
        commit = snapshot_dir.name if COMMIT.match(snapshot_dir.name) else None
    write_json(
        path,
        {
            "commit": commit,
            "files": files,
            "repo_id": repo_id,
            "revision": revision,
            "snapshot_dir": str(snapshot_dir),
        },
    )
    return Path(path)


def read_marker(path: str | Path) -> Path:
    """The snapshot directory a marker records; a clear error if it has gone (a cleaned cache,
    or a marker copied from another machine)."""
    from mmtrace.io import read_json

    info = read_json(path)
    snap = Path(info["snapshot_dir"])
    if not (snap / "config.json").is_file():
        raise SnapshotError(
            f"{path}: the snapshot of {info['repo_id']}@{info['revision']} is no longer at "
            f"{snap} (HF cache moved or cleaned?); delete {path} and rerun the fetch_model rule"
        )
    return snap
