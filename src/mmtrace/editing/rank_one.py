"""MultEdit's closed-form weight update, without forming a d_ff x d_ff inverse.

The release computes `W* = (lambda W + z k^T)(lambda I + k k^T)^-1`, the minimiser of
`||W k - z||^2 + lambda ||W - W_old||_F^2`, by inverting a d_ff x d_ff matrix (11008 x 11008 for
LLaVA-7B). By Sherman-Morrison the same minimiser is a rank-one update,

    W* = W + (z - W k) k^T / (lambda + k^T k),

O(d_model d_ff) in time and memory. The tests check it against the explicit formula.
"""

from __future__ import annotations

import torch


def rank_one_update(
    weight: torch.Tensor, key: torch.Tensor, target: torch.Tensor, lam: float
) -> torch.Tensor:
    """W* for `weight` [out, in] (nn.Linear layout), `key` [in] and `target` z [out]: the new
    weight, computed in float64 and returned in the weight's dtype."""
    if weight.dim() != 2 or key.shape != weight.shape[1:] or target.shape != weight.shape[:1]:
        raise ValueError(
            f"shapes do not fit: weight {tuple(weight.shape)}, key {tuple(key.shape)}, "
            f"target {tuple(target.shape)}"
        )
    if lam <= 0:
        raise ValueError(f"lambda must be positive, got {lam}")
    w, k, z = weight.double(), key.double(), target.double()
    residual = z - w @ k
    return (w + torch.outer(residual, k) / (lam + k @ k)).to(weight.dtype)
