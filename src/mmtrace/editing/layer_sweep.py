"""Fig. 14's layer sweep (docs/method.md §7, F6): MultEdit at the configured settings on the
same questions at every layer, and whether those questions' tracing effects at the edit site
predict where editing them works (`editing.localisation`, Hase et al. 2023)."""

from __future__ import annotations

from pathlib import Path

import torch

from mmtrace import config
from mmtrace.dataset import QuestionRecord
from mmtrace.editing import localisation
from mmtrace.editing.study import Probe, describe, edit_case, method_table
from mmtrace.logs import progress
from mmtrace.models.loading import LoadedModel
from mmtrace.seeding import derive


def _sweep_rows(loaded, targets, templates, data_dir, cfg: config.Editing, seed, tag) -> dict:
    nothing = Probe([], [], [])
    torch.manual_seed(derive(seed, "sweep", loaded.name, tag))
    methods = {"multedit": method_table(cfg)["multedit"]}
    rows = [edit_case(loaded, rec, [], nothing, templates, data_dir, methods) for rec in targets]
    return {
        "efficacy": [r["methods"]["multedit"]["efficacy"] for r in rows],
        "generalisation": [r["methods"]["multedit"]["generalisation"] for r in rows],
        "unedited_efficacy": [r["unedited"]["efficacy"] for r in rows],
        "delta_norm": [r["methods"]["multedit"]["info"]["delta_norm"] for r in rows],
        "p_target_after_delta": [
            r["methods"]["multedit"]["info"]["p_target_by_step"][-1] for r in rows
        ],
    }


def sweeps(
    loaded: LoadedModel,
    targets: list[QuestionRecord],
    templates: config.Prompts,
    data_dir: Path,
    cfg: config.Editing,
    layers: list[int],
    seed: int,
) -> dict:
    """MultEdit (at the configured settings) on the same questions at every layer in `layers`
    (Fig. 14). Its other hyperparameters are swept on the tuning split (`tune`)."""
    by_layer = {
        str(layer): _sweep_rows(
            loaded,
            targets,
            templates,
            data_dir,
            cfg.model_copy(update={"layer": layer}),
            seed,
            f"layer{layer}",
        )
        for layer in progress(layers, desc=f"layer sweep {loaded.name}")
    }
    return {
        "model": loaded.name,
        "layer": cfg.layer,
        "layers": layers,
        "qids": [r.qid for r in targets],
        "by_layer": by_layer,
    }


def summarise_sweep(sweep: dict) -> dict:
    """Means with 95% CIs per layer, and whether the questions' tracing effects at the edit
    site predict where editing them works (`editing.localisation`)."""
    keys = ("efficacy", "generalisation", "unedited_efficacy", "p_target_after_delta")
    return {
        "n": len(sweep["qids"]),
        "layer": sweep["layer"],
        "by_layer": {k: {m: describe(v[m]) for m in keys} for k, v in sweep["by_layer"].items()},
        "localisation": localisation.from_sweep(sweep),
    }
