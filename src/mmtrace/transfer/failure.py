"""Predicting a correct answer (Fig. 17, finding F4 of docs/method.md §5): attention contribution
vs confidence.

Two predictors of correctness are compared on the same questions:
- the contribution of the constraint's tokens to the last token at one layer (Eq. 1), higher
  meaning "correct", the direction Yuksekgonul et al. report (fixed in advance, never flipped);
- the model's confidence, the probability of its own top-1 token (no gold answer needed).

The layer is chosen by a documented rule on one half of the questions and evaluated on the
other: `split_halves` draws a seeded half stratified by correctness, `choose_layer` takes the
layer with the highest AUROC on that half (ties to the lower layer). On the evaluation half each
AUROC gets a stratified bootstrap CI, and the two are compared with DeLong's test for correlated
ROC curves (DeLong et al. 1988, in Sun and Xu's 2014 mid-rank form) plus a bootstrap CI of the
difference.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape[-1] != labels.shape[0] or labels.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} do not match")
    if labels.all() or not labels.any():
        raise ValueError("AUROC needs both classes (correct and incorrect answers)")
    return scores, labels


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold, from (0, 0)."""
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each tied group
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    return np.r_[0.0, fp / (~y).sum()], np.r_[0.0, tp / y.sum()]


def _placements(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: V10 per positive, V01 per negative (mid-ranks, ties 1/2).

    scores: [predictors, n]. V10_i = P(score_i > a random negative's), V01_j = P(a random
    positive's > score_j); the AUROC is the mean of either."""
    pos, neg = scores[:, labels], scores[:, ~labels]
    m, n = pos.shape[1], neg.shape[1]
    both = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    v10 = (both[:, :m] - stats.rankdata(pos, axis=1)) / n
    v01 = 1.0 - (both[:, m:] - stats.rankdata(neg, axis=1)) / m
    return v10, v01


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive outscores a negative), ties counted 1/2."""
    scores, labels = _check(scores, labels)
    v10, _ = _placements(scores[None], labels)
    return float(v10.mean())


def delong(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray) -> dict:
    """DeLong's test of AUROC(a) = AUROC(b) for two predictors scored on the same questions."""
    scores, labels = _check(np.stack([scores_a, scores_b]), labels)
    v10, v01 = _placements(scores, labels)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least 2 questions of each class")
    aucs = v10.mean(axis=1)
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 0:
        z, p = 0.0, 1.0
    else:
        z = diff / np.sqrt(var)
        p = float(2 * stats.norm.sf(abs(z)))
    return {
        "auroc_a": float(aucs[0]),
        "auroc_b": float(aucs[1]),
        "difference": diff,
        "se": float(np.sqrt(max(var, 0.0))),
        "z": float(z),
        "p_value": p,
        "var_a": float(cov[0, 0]),
        "var_b": float(cov[1, 1]),
    }


def bootstrap_aurocs(
    scores: np.ndarray, labels: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict:
    """Percentile CIs of each predictor's AUROC and of their difference (a - b).

    scores: [predictors, n]. Resampling is stratified (correct and incorrect answers resampled
    separately, as pROC does by default), so every resample has both classes."""
    scores, labels = _check(np.atleast_2d(scores), labels)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    aucs = np.empty((n_boot, scores.shape[0]))
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        v10, _ = _placements(scores[:, idx], labels[idx])
        aucs[b] = v10.mean(axis=1)
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {"ci95": [[float(x) for x in np.quantile(aucs[:, i], q)] for i in range(aucs.shape[1])]}
    if scores.shape[0] == 2:
        out["difference_ci95"] = [float(x) for x in np.quantile(aucs[:, 0] - aucs[:, 1], q)]
    return out


def split_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(selection, evaluation) index arrays: a seeded half of each class in each (the selection
    half gets the extra question of an odd class)."""
    labels = np.asarray(labels).astype(bool)
    rng = np.random.default_rng(seed)
    sel, ev = [], []
    for cls in (True, False):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cut = (idx.size + 1) // 2
        sel.append(idx[:cut])
        ev.append(idx[cut:])
    return np.sort(np.concatenate(sel)), np.sort(np.concatenate(ev))


def choose_layer(per_layer: np.ndarray, labels: np.ndarray) -> tuple[int, list[float]]:
    """The layer whose contribution best predicts correctness (highest AUROC; ties to the
    lower layer). per_layer: [questions, layers]. Returns (layer, AUROC of every layer)."""
    per_layer = np.asarray(per_layer, dtype=np.float64)
    aucs = [auroc(per_layer[:, layer], labels) for layer in range(per_layer.shape[1])]
    return int(np.argmax(aucs)), aucs


def _classes(correct: np.ndarray) -> dict[str, int]:
    """n per class: what F4's power rests on (stated beside every AUROC)."""
    return {"n_correct": int(correct.sum()), "n_incorrect": int((~correct).sum())}


def predict_correctness(
    per_layer: np.ndarray,
    confidence: np.ndarray,
    correct: np.ndarray,
    n_boot: int,
    seed: int,
    min_per_class: int = 3,
) -> dict:
    """The whole Fig. 17 analysis for one group of questions.

    per_layer: [questions, layers] constraint -> last-token contributions; confidence:
    [questions]; correct: [questions] bools. Returns the chosen layer, both AUROCs on the
    evaluation half with CIs, DeLong's test, the ROC curves, and the counts; or, when a half
    lacks `min_per_class` questions of a class, only the counts and the reason."""
    per_layer = np.asarray(per_layer, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct).astype(bool)
    if per_layer.ndim != 2 or not per_layer.shape[0] == confidence.size == correct.size:
        raise ValueError("per_layer, confidence and correct must describe the same questions")
    sel, ev = split_halves(correct, seed)
    counts = {"n": int(correct.size), **_classes(correct)}
    counts |= {
        half: {"n": int(i.size), **_classes(correct[i])}
        for half, i in (("selection", sel), ("evaluation", ev))
    }
    smallest = min(min(int(correct[h].sum()), int((~correct[h]).sum())) for h in (sel, ev))
    if smallest < min_per_class:
        return {
            **counts,
            "skipped": f"a half has fewer than {min_per_class} correct or incorrect answers",
        }
    layer, sel_aucs = choose_layer(per_layer[sel], correct[sel])
    contrib, conf, y = per_layer[ev, layer], confidence[ev], correct[ev]
    test = delong(contrib, conf, y)
    boot = bootstrap_aurocs(np.stack([contrib, conf]), y, n_boot, seed)
    fpr_a, tpr_a = roc_curve(contrib, y)
    fpr_b, tpr_b = roc_curve(conf, y)
    return {
        **counts,
        "layer": layer,
        "selection_auroc_by_layer": sel_aucs,
        "contribution": {
            "auroc": test["auroc_a"],
            "ci95": boot["ci95"][0],
            "roc": {"fpr": fpr_a.tolist(), "tpr": tpr_a.tolist()},
        },
        "confidence": {
            "auroc": test["auroc_b"],
            "ci95": boot["ci95"][1],
            "roc": {"fpr": fpr_b.tolist(), "tpr": tpr_b.tolist()},
        },
        "difference": {
            "auroc": test["difference"],
            "ci95": boot["difference_ci95"],
            "delong_z": test["z"],
            "delong_p": test["p_value"],
        },
    }
