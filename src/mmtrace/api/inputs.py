"""What the notebook API takes: images, questions and constraints, and the error a user can
fix."""

from __future__ import annotations

from typing import Any

ImageLike = Any  # a path (str or Path), a PIL image, or None (a text-only model)
Constraint = str | tuple[int, int]


class InputError(ValueError):
    """A value the user can fix: what is wrong, the parameter and its value, how to fix it."""

    def __init__(self, what: str, parameter: str, value: Any, fix: str) -> None:
        self.what, self.parameter, self.value, self.fix = what, parameter, value, fix
        super().__init__(f"{what} ({parameter}={value!r}): {fix}")


def constraint_span(question: str, constraint: Constraint) -> tuple[int, int]:
    """Character offsets [start, end) of the constraint in the question (InputError if it is
    not part of it)."""
    if isinstance(constraint, str):
        start = question.find(constraint) if constraint.strip() else -1
        if start < 0:
            raise InputError(
                "the constraint is not part of the question",
                "constraint",
                constraint,
                "give the constraint verbatim, as it appears in the question",
            )
        return start, start + len(constraint)
    start, end = (int(v) for v in constraint)
    if not 0 <= start < end <= len(question):
        raise InputError(
            "the constraint's offsets are outside the question",
            "constraint",
            (start, end),
            f"give 0 <= start < end <= {len(question)}",
        )
    return start, end
