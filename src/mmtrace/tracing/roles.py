"""Token roles of traced positions relative to the corrupted constraint, as ROME's average plots
group them (extended with the last visual token and a second constraint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # figures read roles without loading torch and transformers
    from mmtrace.models.encoding import EncodedQuestion

# In the order figures list them.
ROLES = (
    "last_image",
    "before",
    "first",
    "middle",
    "last",
    "other_constraint",
    "first_after",
    "further",
    "last_token",
)
# the roles of the corrupted constraint's own tokens
CONSTRAINT_ROLES = ("first", "middle", "last")
ROLE_LABELS = {
    "last_image": "last visual token",
    "before": "tokens before constraint",
    "first": "first constraint token",
    "middle": "middle constraint tokens",
    "last": "last constraint token",
    "other_constraint": "other constraint's tokens",
    "first_after": "first token after",
    "further": "further tokens",
    "last_token": "last token",
}


def roles(enc: EncodedQuestion, positions: Sequence[int], constraint: str) -> list[str]:
    """Each traced position's role relative to the corrupted constraint (see ROLES)."""
    span = enc.span_positions[constraint]
    others = {p for t, ps in enc.span_positions.items() if t != constraint for p in ps}
    last = len(enc.input_ids) - 1
    image = set(enc.image_positions)
    out = []
    for p in positions:
        if p == last:
            out.append("last_token")
        elif p in image:
            out.append("last_image")
        elif p == span[-1]:
            out.append("last")  # a one-token constraint counts as its last token
        elif p == span[0]:
            out.append("first")
        elif span[0] < p < span[-1]:
            out.append("middle")
        elif p in others:
            out.append("other_constraint")
        elif p < span[0]:
            out.append("before")
        elif p == span[-1] + 1:
            out.append("first_after")
        else:
            out.append("further")
    return out


def constraint_curve(trace: dict, kind: str) -> np.ndarray:
    """Mean IE over the corrupted constraint's tokens, per layer."""
    ie = np.asarray(trace["ie"][kind], dtype=float)
    rows = [i for i, r in enumerate(trace["roles"]) if r in CONSTRAINT_ROLES]
    return ie[rows].mean(axis=0)
