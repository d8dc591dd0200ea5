"""The decision rules of the claims table and the tolerances of the reproduction check, fixed
here (and in config.yaml) before any run: a verdict is computed from a run's outputs by these
rules and never chosen after seeing them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmtrace.config.base import Positive, Strict


class Tolerance(Strict):
    abs: float = Field(ge=0)
    rel: float = Field(ge=0)


class Claims(Strict):
    """How each of the paper's claims is decided (docs/method.md §4-§7). Layers are placed by
    their relative depth l / (L - 1): `early` up to `early_until`, `middle` up to `middle_until`,
    `late` beyond, so the rules read the same on 6 toy layers and 32 real ones."""

    alpha: float = Field(0.05, gt=0, lt=1)  # every test, after Holm's correction where per layer
    # from the layers the paper reports (mmtrace.verdicts.paper): early ends between layers 4
    # and 5 of 32, middle at two thirds of the depth
    early_until: float = Field(4.5 / 31, gt=0, lt=1)
    middle_until: float = Field(2 / 3, gt=0, le=1)
    # a trace-based verdict needs this many traced questions in a split, else `inconclusive`
    min_traced: Positive = 20
    # F3b / F4 compare correct with incorrect answers: fewer than this in either class is
    # `inconclusive` (and fewer edits than this for F5)
    min_errors: Positive = 30
    # F1/F2 windows: a window "restores the fact" when, at a causal layer, the mean IE at the
    # constraint recovers at least this share of the corruption's mean drop p_clean - p_corr
    window_share: float = Field(0.5, gt=0, le=1)
    # F3: "a small subset": the fewest visual tokens holding `attention.spread_mass` of a
    # question's contribution are at most this share of the visual tokens (upper end of the
    # 95% CI of the mean over questions). The paper reports 36 of 576 (6%); a quarter, four
    # times that, lets 16 toy tokens pass with 4. Near-uniform contributions (random weights:
    # about half the tokens) fail it, as a top-k share above uniform did not.
    f3_max_spread: float = Field(0.25, gt=0, le=1)
    # F4: contribution "predicts" correctness when its AUROC's CI lies above this
    chance_auroc: float = Field(0.5, ge=0, le=1)
    # F5: MultEdit may lose at most this much specificity against the unedited model
    max_specificity_drop: float = Field(0.05, ge=0, le=1)
    # F6 per question (Hase et al.): fewer questions in the layer sweep is `inconclusive`
    min_localisation: Positive = 10
    # Knife-edges (mmtrace.verdicts.edges): a comparison whose value lies within
    # abs + rel * |threshold| of its threshold is near it; a verdict that one such comparison
    # flips is `fragile`. Per kind of value: p-values, probability-scale effects (IE, drops,
    # shares, contribution differences), AUROCs, edit metrics (efficacy, specificity: an edit's
    # Adam steps amplify rounding), rank correlations.
    margins: dict[str, Tolerance] = Field(
        default_factory=lambda: {
            "p_value": Tolerance(abs=0.0, rel=0.05),
            "ie": Tolerance(abs=0.0001, rel=0.0),
            "auroc": Tolerance(abs=0.0001, rel=0.0),
            "edit": Tolerance(abs=0.001, rel=0.0),
            "rho": Tolerance(abs=0.001, rel=0.0),
        }
    )

    @model_validator(mode="after")
    def _ordered(self) -> Claims:
        if not self.early_until < self.middle_until:
            raise ValueError("claims: early_until must be below middle_until")
        return self


class Verify(Strict):
    """`snakemake verify`: a run's key statistics against a committed reference. A number
    agrees when |run - reference| <= abs + rel * |reference|, with (abs, rel) the entry of
    `tolerances` whose key is the longest prefix of the statistic's name (`default` otherwise)."""

    reference: str = "reference/toy.json"
    tolerances: dict[str, Tolerance] = {
        "accuracy": Tolerance(abs=0.02, rel=0.0),
        "default": Tolerance(abs=0.05, rel=0.25),
    }
    # a verdict that differs from the reference: `fail` the check, or only `report` it
    verdicts: Literal["fail", "report"] = "fail"

    @model_validator(mode="after")
    def _tolerances(self) -> Verify:
        if "default" not in self.tolerances:
            raise ValueError("verify.tolerances needs a `default` entry")
        return self


class Robustness(Strict):
    """`snakemake robustness`: the whole workflow once per seed (each a complete run under
    results/robustness/seed_<s>/), and the claims pooled over the seeds."""

    seeds: list[int] = Field([1234, 1235, 1236], min_length=1)
    # the committed pooled verdicts of a `snakemake robustness` run: the claims table marks
    # each verdict the seeds disagree on (null: none)
    reference: str | None = "reference/robustness.json"
