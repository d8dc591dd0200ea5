"""Where a question's constraint is: locating the release's `main_entity` in the question when
a row is loaded, and tidying that span when it is annotated.

Locating (`find_span`, at load time). The constraint span is located in the question exactly,
then case-insensitively, then after trimming punctuation and whitespace, then (for multi-line
`main_entity` values with annotator notes) on its first line; a row whose `main_entity` is still
not found is reported, not guessed. OK-VQA only: an entity that is a rephrasing, not a substring,
of the question is recovered from its words (`recover_span`), and counted in the report's notes.

Tidying (`trim_span`, `complete_known_span`, at annotation). The visual span is the located span
trimmed of surrounding punctuation and a possessive "'s" (the tracing and editing code works at
the span's last token, which should be the noun, not a comma). Known only: a span cut after its
first words ("This video" in "This video game is developed by") is extended over at most two
following words when the rest of the question then equals the rest of the fact's known_1000
prompt after the subject ("Yakuza 2 is developed by").
"""

from __future__ import annotations

import re

PUNCT = " \t\r\n,.;:!?\"'"


def find_span(question: str, entity: str) -> tuple[int, int] | None:
    """Character span of `entity` in `question`: exact, then case-insensitive, then trimmed of
    surrounding punctuation/whitespace (the release has entries like 'This application,'), then
    the first line only (a few OK-VQA entries append annotator notes on further lines)."""
    for needle, hay in ((entity, question), (entity.lower(), question.lower())):
        i = hay.find(needle)
        if needle and i >= 0:
            return i, i + len(needle)
    candidates = [entity.strip(PUNCT)]
    first_line = entity.strip().split("\n", 1)[0].strip(PUNCT)
    if first_line != candidates[0]:
        candidates.append(first_line)
    for trimmed in candidates:
        if trimmed:
            i = question.lower().find(trimmed.lower())
            if i >= 0:
                return i, i + len(trimmed)
    return None


_DETERMINERS = frozenset({"this", "these", "that", "those", "the", "a", "an"})
_FUNCTION_WORDS = _DETERMINERS | frozenset(
    ["of", "on", "in", "at", "to", "for", "by", "with", "near", "over", "under", "from"]
    + ["is", "are", "was", "were", "be", "it", "its", "and", "or"]
)


def recover_span(question: str, entity: str) -> tuple[int, int] | None:
    """Fallback for OK-VQA entities that are a rephrasing, not a substring, of the question
    ('this plant' for 'Name the type of plant this is?'): the longest run of consecutive entity
    words found as whole words in the question, trimmed of function words at both ends (a
    leading determiner that the question also has before the run is kept: 'this dog'). None when
    no content word of the entity occurs in the question."""
    words = re.findall(r"[A-Za-z0-9']+", entity.split("\n", 1)[0])
    best: tuple[int, int, int] | None = None  # (n content words, start, end)
    for i in range(len(words)):
        for j in range(len(words), i, -1):
            run = words[i:j]
            while run and run[0].lower() in _FUNCTION_WORDS:
                run = run[1:]
            while run and run[-1].lower() in _FUNCTION_WORDS:
                run = run[:-1]
            if not run:
                continue
            pattern = r"\b" + r"\s+".join(re.escape(w) for w in run) + r"\b"
            m = re.search(pattern, question, flags=re.IGNORECASE)
            if m is None:
                continue
            start = m.start()
            det = re.search(r"\b(this|these|that|those)\s+$", question[:start], re.IGNORECASE)
            if det is not None:
                start = det.start()
            if best is None or len(run) > best[0]:
                best = (len(run), start, m.end())
    return None if best is None else (best[1], best[2])


def trim_span(question: str, start: int, end: int) -> tuple[int, int]:
    """Drop surrounding whitespace/punctuation and a final possessive from a span."""
    while start < end and not question[start].isalnum():
        start += 1
    while end > start and not question[end - 1].isalnum():
        end -= 1
    text = question[start:end]
    for suffix in ("'s", "\u2019s"):
        if text.endswith(suffix) and len(text) > len(suffix):
            end -= len(suffix)
            while end > start and not question[end - 1].isalnum():
                end -= 1
            break
    return start, end


def complete_known_span(question: str, end: int, subject: str, prompt: str) -> int:
    """New end of a Known span cut short ("This video" | " game is developed by"): extended
    over at most two words when the question's remainder then equals the prompt's remainder
    after the subject. Returns `end` unchanged otherwise."""
    if not subject or subject not in prompt:
        return end
    tail = prompt[prompt.index(subject) + len(subject) :]
    rest = question[end:]
    if not tail.strip() or rest == tail or not rest.endswith(tail):
        return end
    extra = rest[: len(rest) - len(tail)]
    if re.fullmatch(r"( [A-Za-z][A-Za-z-]*){1,2}", extra):
        return end + len(extra)
    return end


def span_record(text: str, start: int, end: int, kind: str, replacement: str) -> dict:
    """A question record's constraint entry: the span `start:end` of `text`, its type ("visual"
    or "textual") and its corruption `replacement`."""
    return {
        "text": text[start:end],
        "start": start,
        "end": end,
        "type": kind,
        "replacement": replacement,
    }
