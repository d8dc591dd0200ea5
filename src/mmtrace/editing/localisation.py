"""Does localisation inform editing? (Hase et al. 2023; docs/method.md §7, F6.)

Input: for the questions of the layer sweep, the causal-tracing effect at the edit site per
layer (`ie[q][l]`, computed by the tracing package in the `edit_sweep` step and stored beside
the sweep) and MultEdit's efficacy when editing layer l (`efficacy[l][q]`, the sweep). Readings:
- within layers (the decision, Hase et al.'s "beyond the layer"): the mean over layers of the
  Spearman rho across questions between IE and efficacy, tested > 0 by permuting the questions'
  IE within each layer (seeded): do questions with larger tracing effects at a layer edit better
  there? Both IE and efficacy tend to fall with depth, so a correlation over layers alone would
  find that shared trend, not localisation;
- per layer: the same rho with its own p-value, Holm-corrected over layers;
- per question (descriptive): Spearman's rho across layers between IE and efficacy, with a
  one-sided signed-rank test over questions; it includes the shared depth trend. Questions whose
  IE or efficacy is constant across layers have no rho and are counted apart.
Hase et al. found localisation nearly uninformative in GPT-J; the paper's F6 assumes the
opposite for MLLMs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from mmtrace.stats import greater_than_zero, holm


def _rho(a: np.ndarray, b: np.ndarray) -> float | None:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def _within_layer(ie: np.ndarray, eff: np.ndarray, n_perm: int, seed: int) -> tuple:
    """(mean per-layer Spearman rho, one-sided permutation p, layers used): questions' IE
    shuffled within each layer, the efficacy kept."""
    use = [j for j in range(ie.shape[1]) if np.ptp(ie[:, j]) > 0 and np.ptp(eff[:, j]) > 0]
    if not use or ie.shape[0] < 3:
        return None, None, []
    ri = np.stack([stats.rankdata(ie[:, j]) for j in use], axis=1)
    re = np.stack([stats.rankdata(eff[:, j]) for j in use], axis=1)
    ri, re = ri - ri.mean(axis=0), re - re.mean(axis=0)
    norm = np.sqrt((ri**2).sum(axis=0) * (re**2).sum(axis=0))

    def statistic(r: np.ndarray) -> float:
        return float(np.mean((r * re).sum(axis=0) / norm))

    observed = statistic(ri)
    rng = np.random.default_rng(seed)
    null = np.array(
        [statistic(np.stack([rng.permutation(c) for c in ri.T], axis=1)) for _ in range(n_perm)]
    )
    p = (1 + int((null >= observed - 1e-12).sum())) / (1 + n_perm)
    return observed, p, use


def informs_editing(
    ie: np.ndarray, efficacy: np.ndarray, layers: list[int], n_perm: int = 2000, seed: int = 0
) -> dict:
    """ie and efficacy: [questions, layers] (aligned). The within-layer rho with its permutation
    test, per-layer rho with Holm-corrected two-sided p-values, per-question rho."""
    ie, efficacy = np.asarray(ie, dtype=float), np.asarray(efficacy, dtype=float)
    if ie.shape != efficacy.shape or ie.ndim != 2 or ie.shape[1] != len(layers):
        raise ValueError(f"ie {ie.shape} and efficacy {efficacy.shape} do not match {layers}")
    rhos = [_rho(ie[q], efficacy[q]) for q in range(ie.shape[0])]
    defined = np.array([r for r in rhos if r is not None])
    per_layer, ps = [], []
    for j, layer in enumerate(layers):
        if np.ptp(ie[:, j]) == 0 or np.ptp(efficacy[:, j]) == 0 or ie.shape[0] < 3:
            per_layer.append({"layer": layer, "rho": None, "p_value": None})
            ps.append(None)
            continue
        res = stats.spearmanr(ie[:, j], efficacy[:, j])
        per_layer.append(
            {"layer": layer, "rho": float(res.statistic), "p_value": float(res.pvalue)}
        )
        ps.append(float(res.pvalue))
    for entry, p in zip(per_layer, holm(ps), strict=True):
        entry["p_holm"] = p
    within, p_within, used = _within_layer(ie, efficacy, n_perm, seed)
    return {
        "n_questions": int(ie.shape[0]),
        "within_layer_rho": within,
        "p_within_layer": p_within,
        "n_layers_used": len(used),
        "n_with_rho": int(defined.size),
        "per_question_rho": rhos,
        "median_rho": float(np.median(defined)) if defined.size else None,
        "mean_rho": float(defined.mean()) if defined.size else None,
        "p_rho_positive": greater_than_zero(defined) if defined.size else None,
        "per_layer": per_layer,
        # where each question's IE peaks and where its edit works best: agreement rate
        "same_best_layer": float(np.mean(ie.argmax(axis=1) == efficacy.argmax(axis=1)))
        if ie.shape[0]
        else None,
    }


def from_sweep(sweep: dict) -> dict | None:
    """`informs_editing` on a sweep file's `localisation` and `by_layer` (None if absent)."""
    loc = sweep.get("localisation")
    if not loc or not loc["records"]:
        return None
    layers = [int(v) for v in sweep["layers"]]
    index = {q: i for i, q in enumerate(sweep["qids"])}
    rows = [r for r in loc["records"] if r["qid"] in index]
    ie = np.array([[r["ie"][layer] for layer in layers] for r in rows])
    eff = np.array(
        [
            [sweep["by_layer"][str(layer)]["efficacy"][index[r["qid"]]] for layer in layers]
            for r in rows
        ]
    )
    return {"kind": loc["kind"], "window": loc["window"], **informs_editing(ie, eff, layers)}
