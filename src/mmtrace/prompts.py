"""Prompt construction: the one place that turns a question into model input text.

Both the toy models (trained with these prompts) and real checkpoints go through here, so a
constraint's character offsets in the question can be mapped into the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    text: str
    question_offset: int  # where the question starts inside `text`

    def shift(self, start: int, end: int) -> tuple[int, int]:
        """Map character offsets in the question to offsets in the prompt."""
        return start + self.question_offset, end + self.question_offset


def build(template: str, question: str) -> Prompt:
    if template.count("{question}") != 1:
        raise ValueError(f"prompt template must contain '{{question}}' once: {template!r}")
    before, after = template.split("{question}")
    return Prompt(before + question + after, len(before))


def answer_continuation(answer: str) -> str:
    """Answers follow the prompt's final ':' after one space, as the chat models produce them."""
    return " " + answer.strip()
