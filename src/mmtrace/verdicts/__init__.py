"""Verdicts: the paper's claims decided from a run's summaries by rules fixed in config
(`claims`), and the reproduction check of a run against a committed reference (`verify`).

This package reads the analyses' summary files (JSON) and imports none of the analyses: it is
their reader, not a sibling that borrows their code.
"""
