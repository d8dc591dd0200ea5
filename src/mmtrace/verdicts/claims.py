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
    # the near-threshold comparisons whose flip would change the verdict (`verdicts.edges`);
    # empty: the verdict is decided outside every declared margin
    fragile: list[str] = field(default_factory=list)
    # the verdict per seed of the committed multi-seed run (`robustness.reference`), where it
    # has this row; `unstable` in the table where they disagree
    seeds: dict[str, str] = field(default_factory=dict)

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


def mark_seeds(rows: list[Row], pooled: dict | None, own_seed: int | None = None) -> None:
    """Give each row the verdicts of the committed multi-seed run (`verdicts.robustness`), with
    this run's own verdict in place of the committed one for its seed (`own_seed`): the run is
    that seed's authority, and a committed multi-seed run made before a change of the rules
    would otherwise mark a verdict this run no longer gives."""
    if not pooled:
        return
    by_key = {(r["claim"], r["model"]): r["verdicts"] for r in pooled["rows"]}
    for row in rows:
        row.seeds = dict(by_key.get((row.claim, row.model), {}))
        if row.seeds and own_seed is not None:
            row.seeds[str(own_seed)] = row.verdict


def seed_unstable(row: dict) -> bool:
    """The seeds of the multi-seed run disagree on this row's verdict."""
    return len(set(row.get("seeds", {}).values())) > 1


def decide(ev: Evidence, rules: Claims) -> list[Row]:
    """Every claim's rows, in the paper's order, then the method-validation rows; a row
    decided within `rules.margins` of a threshold lists the comparisons that make it fragile."""
    from mmtrace.verdicts import controls, edges, editing, storage, transfer

    out = []
    for module in (storage, transfer, editing, controls):
        rows, fragile = edges.fragile(lambda m=module: m.rows(ev, rules), rules.margins)
        for r in rows:
            r.fragile = fragile.get((r.claim, r.model), [])
        out += rows
    return out
