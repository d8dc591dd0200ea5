"""Locating the constraint span in a question (exact, case-insensitive, trimmed, first line),
and tidying it for annotation (punctuation, possessive, Known spans cut short)."""

from __future__ import annotations

from mmtrace.paperworld.spans import complete_known_span, find_span, trim_span


def test_find_span_fallbacks():
    assert find_span("This building is tall", "This building") == (0, 13)
    assert find_span("Name a movie by this director?", "This director") == (16, 29)
    assert find_span("This application, a product", "This application,") == (0, 17)
    assert find_span("What is this plant?", "this plant ") == (8, 18)
    assert find_span("What is this?", "that dog") is None


def test_span_helpers():
    q = "This person's domain of work is"
    assert trim_span(q, 0, 13) == (0, 11)
    assert trim_span("This application, a product", 0, 17) == (0, 16)
    q2 = "This video game is developed by"
    assert complete_known_span(q2, 10, "Yakuza 2", "Yakuza 2 is developed by") == 15
    # unchanged when the prompt does not continue the same way
    assert complete_known_span(q2, 10, "Yakuza 2", "Yakuza 2, made by") == 10
    assert complete_known_span(q2, 15, "Yakuza 2", "Yakuza 2 is developed by") == 15
