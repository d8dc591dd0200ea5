"""The significance marks of the figures, from the tests the claims table decides by
(`mmtrace.verdicts`): the same p-values, the same Holm correction over the same family, the
same alpha (config `claims.alpha`) and the same direction, so a figure never stars a result the
claims reject. Each function mirrors one claim rule, applied to every panel of its figure:

- `ablation_stars` (the Ablation and F3-content rows): per k, top-k's drop in p(answer) above
  random-k's, one-sided Wilcoxon, Holm over the panel's k;
- `per_layer_stars` (F3-layer): per layer, the drop with every visual token blocked there > 0,
  Holm over layers (the summary's `p_holm_drop_positive`);
- `separation_marks` (F3b): per layer, correct vs incorrect constraint -> last-token
  contributions, Mann-Whitney, Holm over layers; +1 where correct > incorrect, -1 where less;
- `edit_stars` (F5): MultEdit's efficacy above each baseline's, paired Wilcoxon, Holm over the
  two baselines.

The claims read one panel of each figure (the pooled split at its largest k below all tokens;
the split F3b/F4 are judged on; each scenario); there the marks and the verdicts agree, which
tests/report/test_significance.py checks against the claim rules themselves.
"""

from __future__ import annotations

from mmtrace.stats import holm

BASELINES = ("finetune", "finetune_constrained")


def _significant(p: float | None, alpha: float) -> bool:
    return p is not None and p < alpha


def ablation_stars(group: dict, alpha: float, against: str = "random") -> list[bool]:
    """Per k of one way's group: top-k lowers p(answer) more than `against`-k does (positive
    mean difference and Holm-adjusted p < alpha)."""
    p = holm(group[f"p_value_top_vs_{against}"])
    top, other = group["top"]["drop_p_answer"], group[against]["drop_p_answer"]
    return [_significant(q, alpha) and t - o > 0 for q, t, o in zip(p, top, other, strict=True)]


def per_layer_stars(per_layer: dict, alpha: float) -> list[bool]:
    """Per layer: blocking every visual token there lowers p(answer) (Holm over layers)."""
    return [_significant(q, alpha) for q in per_layer["p_holm_drop_positive"]]


def separation_marks(constraint_to_last: dict, alpha: float) -> list[int]:
    """Per layer: +1 where correct answers' contribution is significantly larger than incorrect
    ones' (Holm over layers), -1 where significantly smaller, 0 elsewhere."""
    c = constraint_to_last
    n = len(c["p_value"])
    if "mean" not in c.get("correct", {}) or "mean" not in c.get("incorrect", {}):
        return [0] * n
    out = []
    for layer, q in enumerate(holm(c["p_value"])):
        diff = c["correct"]["mean"][layer] - c["incorrect"]["mean"][layer]
        out.append(0 if not _significant(q, alpha) else (1 if diff > 0 else -1))
    return out


def edit_stars(scenario: dict, alpha: float) -> dict[str, tuple[bool, float | None]]:
    """Per baseline: (MultEdit's efficacy significantly above it, the Holm-adjusted p)."""
    vs = scenario.get("multedit_vs", {})
    ps = holm([vs.get(b, {}).get("efficacy", {}).get("p_value") for b in BASELINES])
    out = {}
    for b, p in zip(BASELINES, ps, strict=True):
        diff = vs.get(b, {}).get("efficacy", {}).get("mean_difference")
        out[b] = (_significant(p, alpha) and diff is not None and diff > 0, p)
    return out
