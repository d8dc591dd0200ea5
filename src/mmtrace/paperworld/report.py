"""The drop report: every row a loader or the annotation reads is either kept or counted with
its reason (and the first few row indices of each reason), so nothing is skipped silently. The
workflow writes it, per split, as JSON next to the question tables (`Report.as_dict`)."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Report:
    """Rows kept and dropped (by reason, with the first few row indices of each); `notes`
    counts kept rows with something worth knowing (e.g. a question text that differs from its
    source)."""

    file: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    notes: Counter = field(default_factory=Counter)
    seen: set[int] = field(default_factory=set, repr=False)

    def claim(self, index: int) -> bool:
        """Record a row index; False if an earlier row already had it (a repeated index would
        become a repeated question id, and one row's scores would overwrite another's)."""
        if index in self.seen:
            return False
        self.seen.add(index)
        return True

    def drop(self, index: int, reason: str) -> None:
        self.dropped[reason] += 1
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(index)

    def note(self, reason: str) -> None:
        self.notes[reason] += 1

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        parts = [f"{n} {r} (rows {self.examples[r]}...)" for r, n in sorted(self.dropped.items())]
        text = f"{self.file}: {self.total} rows, {self.kept} kept" + (
            "; dropped: " + "; ".join(parts) if parts else ""
        )
        if self.notes:
            text += "; notes: " + "; ".join(f"{n} {r}" for r, n in sorted(self.notes.items()))
        return text

    def log(self) -> None:
        log.info("%s", self.summary())

    def as_dict(self) -> dict:
        """The counts as plain data, for a JSON report (keys sorted)."""
        return {
            "file": self.file,
            "total": self.total,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "examples": dict(sorted(self.examples.items())),
            "notes": dict(sorted(self.notes.items())),
        }
