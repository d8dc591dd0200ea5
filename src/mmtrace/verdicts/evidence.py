"""What the claims are decided from: the analyses' summaries of one run, and the layer bands."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmtrace.config import Claims
from mmtrace.io import read_json
from mmtrace.verdicts import edges


@dataclass
class Evidence:
    """One run's summaries (an analysis that did not run is an empty dict) and the models'
    roles and control kinds from config."""

    roles: dict[str, str]
    controls: dict[str, str] = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)
    trace: dict = field(default_factory=dict)
    attention: dict = field(default_factory=dict)
    ablation: dict = field(default_factory=dict)
    editing: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)

    @classmethod
    def load(
        cls, roles: dict[str, str], controls: dict[str, str], **paths: str | Path | None
    ) -> Evidence:
        """`paths`: accuracy, trace, attention, ablation, editing, validation -> a summary file
        (None or absent: that analysis did not run)."""
        return cls(
            roles,
            controls,
            **{name: read_json(Path(p)) for name, p in paths.items() if p is not None},
        )

    def studied(self, role: str) -> list[str]:
        """The models of `role` whose mechanism is the question (not the controls)."""
        return sorted(m for m, r in self.roles.items() if r == role and m not in self.controls)


def band(layer: int, n_layers: int, rules: Claims) -> str:
    """early | middle | late, by relative depth layer / (n_layers - 1)."""
    depth = layer / (n_layers - 1) if n_layers > 1 else 0.0
    if depth <= rules.early_until:
        return "early"
    return "middle" if depth <= rules.middle_until else "late"


@dataclass(frozen=True)
class LayerEvidence:
    """A trace's per-layer evidence at the constraint: the layers whose IE is significantly
    above 0 after Holm's correction (the only layers called causal), and the peak among them."""

    n: int
    n_layers: int
    causal: list[int] | None  # None: the summary has no per-layer tests (an older run)
    peak: int | None
    peak_ie: float | None


def layer_evidence(entry: dict, rules: Claims, where: str = "") -> LayerEvidence:
    """From one trace summary entry (a setting, kind and window; `where` names it for the
    knife-edges, `mmtrace.verdicts.edges`)."""
    means = entry["mean_ie_at_constraint_by_layer"]
    p_holm = entry.get("p_holm_ie_positive_by_layer")
    if p_holm is None:
        return LayerEvidence(int(entry["n_traced"]), len(means), None, None, None)
    causal = [
        layer
        for layer, (m, p) in enumerate(zip(means, p_holm, strict=True))
        if edges.below("p_value", f"{where} l{layer} Holm p", p, rules.alpha)
        and edges.above("ie", f"{where} l{layer} mean IE", m, 0.0)
    ]
    peak = edges.best("ie", f"{where} peak layer", causal, means)
    return LayerEvidence(
        int(entry["n_traced"]),
        len(means),
        causal,
        peak,
        None if peak is None else float(means[peak]),
    )
