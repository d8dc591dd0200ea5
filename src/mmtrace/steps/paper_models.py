"""The paper world's checkpoints (`--config world=paper`): the step of `rules/paper_models.smk`."""

from __future__ import annotations

import logging
from pathlib import Path

from mmtrace import config
from mmtrace.models import hub

log = logging.getLogger(__name__)


def fetch_model(*, model: str, spec: dict, marker: Path) -> None:
    """Download a hub model's pinned snapshot (safetensors, configs, tokenizer) into the HF
    cache and record where it is in `marker`; model jobs load it from there offline. A model
    whose config entry opts in to `weights: convert_pickle` is converted to safetensors beside
    the marker."""
    s = config.ModelSpec(**spec)
    path = hub.snapshot(s.repo, s.revision, pickled_weights=s.weights == "convert_pickle")
    commit = path.name if hub.COMMIT.match(path.name) else None
    if s.weights == "convert_pickle":
        path = hub.convert_pickled(path, marker.parent / "safetensors")
    hub.write_marker(marker, s.repo, s.revision, path, commit=commit)
    log.info("%s: %s@%s -> %s", model, s.repo, s.revision, path)
