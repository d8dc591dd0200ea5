"""Visual tokens -> visual constraint at the first layer (Fig. 5, finding F3 of docs/method.md
§5), and its statistics.

F3 claims that a *small* and *consistent* subset of visual tokens carries the image's information
into the visual-constraint token. Each word is made testable here:
- small: `concentration`, the share of the total contribution held by the top few tokens, against
  the uniform baseline;
- consistent: `consistency`, the mean pairwise Jaccard overlap of the questions' top-k token sets,
  against k tokens drawn at random per question (simulated, with an exact expectation too);
- which tokens: `top_share_by_position` and `patch_grid`, for the heat map over the patch grid.

Top tokens are ranked by contribution, ties broken towards the lower index (a stable sort), so the
statistics are deterministic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the figures use the statistics below without loading torch
    from torch import nn

    from mmtrace.models.encoding import EncodedQuestion

# Bound on the elements of one block of the simulation's largest arrays: the random top-k
# indicators [sims, questions, n] and their pairwise intersections [sims, questions, questions]
# (three float64 arrays of this size at most: about 0.4 GB). Bounding the indicators alone let
# 1000 simulations of 420 questions allocate 4.7 GB, measured.
MAX_SIM_BLOCK = 1 << 24


def visual_to_constraint(model: nn.Module, enc: EncodedQuestion, layer: int = 0) -> np.ndarray:
    """[n_visual] float64: Eq. 1 contribution of each visual token (image_positions order) to the
    last token of the visual constraint at `layer` -- the token that has read the whole
    constraint, so the one the constraint's visual information should be routed into."""
    if not enc.image_positions:
        raise ValueError(f"question {enc.qid}: no visual tokens (text-only model or input?)")
    from mmtrace.transfer.contributions import attention_contributions

    contrib = attention_contributions(model, enc.inputs, layers=[layer], targets=[target(enc)])
    return contrib[0, 0, enc.image_positions].double().cpu().numpy()


def target(enc: EncodedQuestion) -> int:
    """The position Fig. 5 reads: the visual constraint's last token."""
    if not enc.span_positions.get("visual"):
        raise ValueError(f"question {enc.qid}: no visual constraint")
    return enc.span_positions["visual"][-1]


def top_count(share: float, n: int) -> int:
    """ceil(share * n), at least 1; rounding first so that e.g. 0.1 * 30 gives 3, not 4."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return max(1, math.ceil(round(share * n, 9)))


def _top_indicator(matrix: np.ndarray, k: int) -> np.ndarray:
    """[..., n] 0/1 float64: 1 on each row's k largest entries (ties to the lower index)."""
    order = np.argsort(-matrix, axis=-1, kind="stable")[..., :k]
    out = np.zeros(matrix.shape, dtype=np.float64)
    np.put_along_axis(out, order, 1.0, axis=-1)
    return out


def concentration(contrib: np.ndarray, share: float = 0.05) -> float:
    """Fraction of the total contribution held by the top ceil(share * n) visual tokens.

    1.0 means everything sits in the top tokens; spread evenly it equals the uniform baseline
    ceil(share * n) / n, so the ratio of the two says how much more concentrated than uniform.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 1 or contrib.size == 0:
        raise ValueError(f"expected a non-empty 1-d vector, got shape {contrib.shape}")
    if (contrib < 0).any():
        raise ValueError("contributions are norms and must be non-negative")
    total = contrib.sum()
    if total <= 0:
        raise ValueError("all contributions are zero: concentration is undefined")
    m = top_count(share, contrib.size)
    return float(np.sort(contrib)[::-1][:m].sum() / total)


def spread(contrib: np.ndarray, mass: float = 0.5) -> float:
    """The share of the tokens that holds `mass` of the total contribution: the fewest tokens
    that do, over their number. Uniform contributions give about `mass`; one token holding
    `mass` or more gives 1 / n. Unlike a top-k share it does not fix k by the number of tokens,
    and a near-uniform vector (random weights) cannot pass for a concentrated one."""
    contrib = np.asarray(contrib, dtype=np.float64)
    total = contrib.sum()
    if contrib.ndim != 1 or contrib.size == 0 or total <= 0 or (contrib < 0).any():
        raise ValueError("expected a non-empty, non-negative contribution vector with a sum > 0")
    held = np.cumsum(np.sort(contrib)[::-1]) / total
    return float((np.searchsorted(held, mass - 1e-12) + 1) / contrib.size)


def _mean_pairwise_jaccard(ind: np.ndarray, k: int) -> np.ndarray:
    """Mean Jaccard overlap over question pairs of [..., q, n] indicators with k ones per row.

    With |A| = |B| = k, J = |A & B| / (2k - |A & B|); intersections come from one matrix product.
    """
    q = ind.shape[-2]
    inter = ind @ np.swapaxes(ind, -1, -2)  # [..., q, q]
    jac = inter / (2 * k - inter)
    iu = np.triu_indices(q, 1)
    return jac[..., iu[0], iu[1]].mean(axis=-1)


def expected_random_jaccard(n: int, k: int) -> float:
    """Exact expected Jaccard overlap of two independent uniform k-subsets of n tokens.

    Their intersection is hypergeometric, P(x) = C(k, x) C(n-k, k-x) / C(n, k); every pair of
    questions has this law, so it is also the expected mean pairwise overlap of the baseline.
    """
    total = math.comb(n, k)
    return sum(
        math.comb(k, x) * math.comb(n - k, k - x) / total * x / (2 * k - x) for x in range(k + 1)
    )


def consistency(matrix: np.ndarray, k: int, n_perm: int = 1000, seed: int = 0) -> dict:
    """Do questions pick the same top-k visual tokens? matrix: [questions, n_visual].

    The observed statistic is the mean pairwise Jaccard overlap of the questions' top-k sets; the
    baseline is the same statistic when each question's k tokens are drawn uniformly at random
    (n_perm simulations), giving a one-sided permutation p-value (1 + #(sim >= obs)) / (1 + n_perm).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < 2:
        raise ValueError(f"need a [questions >= 2, n_visual] matrix, got shape {matrix.shape}")
    q, n = matrix.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if n_perm < 1:
        raise ValueError(f"n_perm must be positive, got {n_perm}")
    obs = float(_mean_pairwise_jaccard(_top_indicator(matrix, k), k))
    rng = np.random.default_rng(seed)
    step = max(1, MAX_SIM_BLOCK // (q * max(q, n)))
    sims = []
    for s in range(0, n_perm, step):
        # The k smallest of i.i.d. uniforms per row are a uniform random k-subset (no ties, so a
        # partial sort suffices).
        noise = rng.random((min(step, n_perm - s), q, n))
        ind = np.zeros(noise.shape)
        np.put_along_axis(ind, np.argpartition(noise, k - 1, axis=-1)[..., :k], 1.0, axis=-1)
        sims.append(_mean_pairwise_jaccard(ind, k))
    sim = np.concatenate(sims)
    lo, hi = np.quantile(sim, [0.025, 0.975])
    return {
        "overlap": obs,
        "baseline_mean": float(sim.mean()),
        "baseline_ci95": [float(lo), float(hi)],
        "baseline_expected": expected_random_jaccard(n, k),
        "p_value": float((1 + np.count_nonzero(sim >= obs - 1e-12)) / (1 + n_perm)),
        "k": k,
        "n_questions": q,
        "n_visual": n,
        "n_perm": n_perm,
    }


def patch_grid(contrib: np.ndarray) -> np.ndarray:
    """[side, side]: a per-visual-token vector on the image's patch grid, row-major (CLIP orders
    patches left to right, top to bottom), so that the heat map lines up with the image."""
    contrib = np.asarray(contrib)
    if contrib.ndim != 1:
        raise ValueError(f"expected a 1-d vector, got shape {contrib.shape}")
    n = contrib.size
    side = math.isqrt(n)
    if side * side != n or n == 0:
        raise ValueError(
            f"{n} visual tokens do not form a square patch grid (a class token or extra "
            "image features kept?)"
        )
    return contrib.reshape(side, side)


def top_share_by_position(matrix: np.ndarray, share: float = 0.05) -> np.ndarray:
    """[n_visual]: per visual-token index, the fraction of questions in which it is among that
    question's top ceil(share * n) tokens -- the consistent subset Fig. 5 shows (in LLaVA about
    the last 36 of 576 per docs/method.md §5)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"need a [questions, n_visual] matrix, got shape {matrix.shape}")
    return _top_indicator(matrix, top_count(share, matrix.shape[1])).mean(axis=0)
