"""The paper's claims (docs/method.md §4-§7), each decided per model by a rule of config
`claims`: `supported`, `not supported`, or `inconclusive` where the data cannot decide (too few
traced questions or errors), never a guess. Every row says the statistic, its value, the rule and
the reason in words, so a reader can check the verdict by hand."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mmtrace.config import Claims
from mmtrace.verdicts.evidence import Evidence

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass
class Row:
    claim: str
    model: str
    statement: str
    paper: str  # the paper's reading, "(secondary, unverified)" where it is
    statistic: str
    value: str
    rule: str
    verdict: str
    reason: str
    numbers: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def combine(parts: list[tuple[str, str]]) -> tuple[str, str]:
    """Verdicts of the splits (or parts) of one claim: any `not supported` decides; otherwise
    `supported` if one part is; otherwise `inconclusive`."""
    verdicts = [v for v, _ in parts]
    reason = "; ".join(r for _, r in parts)
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED, reason
    if SUPPORTED in verdicts:
        return SUPPORTED, reason
    return INCONCLUSIVE, reason or "no data"


def decide(ev: Evidence, rules: Claims) -> list[Row]:
    """Every claim's rows, in the paper's order, then the method-validation rows."""
    from mmtrace.verdicts import controls, editing, storage, transfer

    return (
        storage.rows(ev, rules)
        + transfer.rows(ev, rules)
        + editing.rows(ev, rules)
        + controls.rows(ev, rules)
    )
