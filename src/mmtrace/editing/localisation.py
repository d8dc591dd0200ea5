"""Does localisation inform editing? (Hase et al. 2023; docs/method.md §7, F6.)

Input: for the questions of the layer sweep, the causal-tracing effect at the edit site per
layer (`ie[q][l]`, computed by `mmtrace.tracing.localisation` and stored beside the sweep) and
MultEdit's efficacy when editing layer l (`efficacy[l][q]`, the sweep). Two readings:
- per question: Spearman's rho across layers between IE and efficacy ("is the layer where this
  question's answer is localised the layer where editing it works?"), tested > 0 with a
  one-sided signed-rank test over questions (questions are independent; layers are not);
  questions whose IE or efficacy is constant across layers have no rho and are counted apart;
- per layer: Spearman's rho across questions (Hase et al.'s "within a layer, do larger tracing
  effects mean better edits?"), Holm-corrected over layers.
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


def informs_editing(ie: np.ndarray, efficacy: np.ndarray, layers: list[int]) -> dict:
    """ie and efficacy: [questions, layers] (aligned). Per-question rho with its signed-rank
    test, and per-layer rho with Holm-corrected two-sided p-values."""
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
    return {
        "n_questions": int(ie.shape[0]),
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
