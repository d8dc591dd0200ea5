"""The analyses' settings: evaluation, causal tracing, attention contributions, visual-token
ablation and editing. Each method's defaults live here and nowhere else: the workflow, the
method's own settings objects and the command line all read them from these models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mmtrace.config.base import Flag, NonNegative, Positive, Shards, Strict


class Evaluation(Strict):
    batch_size: int = Field(64, ge=1)


class Tracing(Strict):
    """MultiModalCausalTrace settings (docs/method.md §4). Windows count layers in `window_style`'s
    convention: `centered` restores `window` layers centred on each layer (ROME), `radius`
    restores [l - window, l + window] (the release). The paper's windows for 32-layer models:
    1 and 3 (single constraint), 6 (multi-constraint), 5 (the LLM)."""

    kinds: list[Literal["mlp", "attn", "hidden"]] = ["mlp", "attn", "hidden"]
    window_style: Literal["centered", "radius"] = "centered"
    windows: list[Positive] = Field([1, 3], min_length=1)  # single-constraint traces (Fig. 3)
    multi_window: int = Field(6, ge=1)  # multi-constraint traces at the textual constraint
    llm_window: int = Field(5, ge=1)  # the LLM's traces (Fig. 1)
    # natural: another entity's phrase of exactly the constraint's token length (docs/method.md
    # §4.2); replace: the question's replacement phrase, cut or padded to fit; repeat: the
    # release's single repeated token; noise: ROME's Gaussian noise on the embeddings
    corruption: Literal["natural", "replace", "repeat", "noise"] = "natural"
    noise_scale: float = Field(3.0, gt=0)  # `noise`: sigma = scale x std of the embeddings
    # Trace only questions the model answers correctly (the paper's choice); false traces all.
    only_correct: Flag = True
    # A question is traced only if the model answers it correctly and the corruption lowers
    # p(answer) by at least this much (None: no such screening); exclusions are counted.
    min_drop: float | None = Field(0.1, ge=0, le=1)
    max_questions: int | None = Field(None, ge=1)  # per model and split, spread evenly (None: all)
    shards: Shards = 1  # jobs per model, each its share of every split (spread over SLURM)
    batch_size: int = Field(64, ge=1)  # restorations per forward pass
    examples: int = Field(3, ge=1)  # per-question heatmaps drawn per model and split
    # the image-swap control (mmtrace.tracing.controls): this many single-constraint questions
    # per tracing job are traced again with another entity's image (0: none)
    image_swap: NonNegative = 5
    # the window sweep: every question also traced at its constraint's tokens for every window
    # 1..L (every kind), so the claims can name the smallest window that restores the fact
    window_sweep: Flag = True
    # true: every trace through the exact reference (one forward pass per cell, slow); false:
    # through the fast engine wherever tracing.gate has checked it against the reference on the
    # model (docs/families.md), the reference elsewhere. Each record says which (`exactness`).
    exact: Flag = False


class Attention(Strict):
    """Information transfer (docs/method.md §5): Eq. 1 contributions, Figs. 5 and 15-17."""

    visual_layer: int = Field(0, ge=0)  # Fig. 5: visual tokens -> constraint at this layer
    top_share: float = Field(0.05, gt=0, le=1)  # concentration and consistency: the top 5%
    # F3's "small": the share of the visual tokens that holds this much of a question's
    # contribution (the fewest tokens that do; not a top-k fixed by the number of tokens)
    spread_mass: float = Field(0.5, gt=0, lt=1)
    n_perm: int = Field(1000, ge=1)  # consistency: draws of the random top-k baseline
    # Constraint -> last token per layer: how a constraint's tokens are combined (Yuksekgonul
    # et al. take the largest token contribution).
    reduce: Literal["max", "sum", "mean"] = "max"
    n_boot: int = Field(1000, ge=1)  # bootstrap resamples for the AUROC intervals (Fig. 17)
    # Fig. 17 picks the layer on a random half of the questions (stratified by correctness) and
    # evaluates on the other half; each half needs this many correct and incorrect answers.
    min_per_class: int = Field(3, ge=2)
    max_questions: int | None = Field(None, ge=1)  # per model and split, spread evenly (None: all)
    shards: Shards = 1  # jobs per model, each its share of every split


class Ablation(Strict):
    """Visual-token ablation (docs/method.md §6): knock out the top-k visual tokens ranked by their
    contribution to the visual constraint, against k random and the k lowest-ranked."""

    ways: list[Literal["block", "mean"]] = Field(["block", "mean"], min_length=1)
    # k as fractions of the visual tokens (LLaVA: 36, 72, 144, 288 of 576).
    fractions: list[float] = Field([0.0625, 0.125, 0.25, 0.5], min_length=1)
    block_layers: int = Field(4, ge=1)  # `block`: attention to the tokens is cut in layers < this
    random_draws: int = Field(3, ge=1)  # random k-subsets per question and k (averaged)
    mean_images: int = Field(64, ge=1)  # `mean`: images of the split averaged per patch
    only_correct: Flag = True  # ablate only questions the model answers correctly
    max_questions: int | None = Field(None, ge=1)  # per model and split, spread evenly (None: all)
    shards: Shards = 1
    batch_size: int = Field(64, ge=1)  # ablated variants per forward pass
    # every visual token blocked in one layer at a time (one pass per layer): where transfer
    # happens (the first attention layer, by F3)
    per_layer: Flag = True

    @model_validator(mode="after")
    def _fractions(self) -> Ablation:
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError("ablation.fractions: every fraction must be in (0, 1]")
        return self


class MultEditSettings(Strict):
    """MultEdit's own hyperparameters (docs/method.md §7). The defaults are the release's values
    (layer 2 of 32, 10 steps, lr 0.1, weight decay 1e-3, lambda 0.01) except the clamp, which the
    release sets to 1e-4 (which looks like a bug) and ROME to 4, our default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: int = Field(2, ge=0)  # the edited MLP (an early causal layer)
    steps: int = Field(10, ge=1)  # Adam steps optimising delta
    lr: float = Field(0.1, gt=0)
    weight_decay: float = Field(1e-3, ge=0)  # coefficient of ||delta|| / ||v0||^2
    lam: float = Field(0.01, gt=0)  # lambda of the closed form
    clamp: float = Field(4.0, gt=0)  # ||delta|| <= clamp * ||v0||


# Which of Editing's fields each method's tuning grid may set (its own hyperparameters).
TUNABLE = {
    "multedit": ("layer", "steps", "lr", "weight_decay", "lam", "clamp"),
    "finetune": ("finetune_steps", "finetune_lr"),
    "finetune_constrained": ("finetune_steps", "finetune_lr", "finetune_norm"),
}


SETTING_LABELS = {
    "clamp": "clamp",
    "steps": "steps",
    "lr": "lr",
    "layer": "layer",
    "weight_decay": "wd",
    "lam": "lambda",
    "finetune_lr": "lr",
    "finetune_steps": "steps",
    "finetune_norm": "bound",
}


VARIANT = "multedit@"  # the method name prefix of MultEdit's diagnostic variants


def variant_method(name: str) -> str:
    """The method name a MultEdit variant's edits are recorded under (`Editing.variants`)."""
    return f"{VARIANT}{name}"


def setting_label(setting: Mapping[str, float] | None) -> str:
    """A grid entry as text, e.g. 'clamp=4' or 'lr=0.001' ('config' when nothing is tuned)."""
    if not setting:
        return "config"
    return ", ".join(f"{SETTING_LABELS.get(k, k)}={v:g}" for k, v in sorted(setting.items()))


class Tuning(Strict):
    """F5 on fronts, not at one arbitrary setting (docs/method.md §7): per model and scenario,
    `edits` cases are set apart by a seeded draw before the held-out edits; every method runs
    every setting of its own grid on them (the efficacy-specificity front), and the setting with
    the highest mean efficacy among those losing at most `max_specificity_drop` of specificity
    (none: the smallest loss; ties: the first in grid order) is the one that method uses on the
    held-out edits, which alone decide F5. Grid entries override Editing's fields."""

    edits: int = Field(6, ge=1)  # per scenario; at most half of the scenario's cases
    max_specificity_drop: float = Field(0.02, ge=0, le=1)
    multedit: list[dict[str, float]] = Field(
        [{"clamp": 1e-4}, {"clamp": 1.0}, {"clamp": 4.0}], min_length=1
    )
    finetune: list[dict[str, float]] = Field(
        [{"finetune_lr": 1e-4}, {"finetune_lr": 1e-3}, {"finetune_lr": 1e-2}], min_length=1
    )
    finetune_constrained: list[dict[str, float]] = Field(
        [{"finetune_norm": 1e-3}, {"finetune_norm": 4e-3}, {"finetune_norm": 2e-2}],
        min_length=1,
    )

    @model_validator(mode="after")
    def _own_hyperparameters(self) -> Tuning:
        for method, fields in TUNABLE.items():
            for i, entry in enumerate(getattr(self, method)):
                bad = sorted(set(entry) - set(fields))
                if bad:
                    raise ValueError(
                        f"tuning.{method}.{i}: {bad} are not {method}'s hyperparameters "
                        f"(allowed: {list(fields)})"
                    )
        return self

    def grid(self, method: str) -> list[dict[str, float]]:
        return list(getattr(self, method))


class Editing(MultEditSettings):
    """MultEdit (its settings above) and its baselines, the scenarios, the tuning fronts and the
    layer sweep."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    scenarios: list[Literal["error_correction", "long_tail"]] = Field(
        ["error_correction", "long_tail"], min_length=1
    )
    finetune_steps: int = Field(10, ge=1)  # both baselines: Adam on the same W
    finetune_lr: float = Field(1e-3, gt=0)
    finetune_norm: float = Field(1e-3, gt=0)  # FT-L: L-inf bound on each weight's change
    unrelated: int = Field(32, ge=1)  # unrelated questions scored for specificity
    # other entities' images asked the edited question (same constraint phrase and relation):
    # neighbourhood specificity
    neighbours: int = Field(8, ge=0)
    # other renderings of the edited entity asked the edited question: generalisation beyond
    # the edited image
    renderings: int = Field(4, ge=0)
    max_edits: int | None = Field(None, ge=1)  # per model and scenario (None: all)
    # each method's setting chosen on a tuning split (None: every method at the values above)
    tuning: Tuning | None = Tuning()
    sweep_layers: list[NonNegative] | None = None  # Fig. 14 (None: every layer)
    # Hase et al.'s test on the sweep's questions: the tracing effect of restoring this site
    # kind (window) at the edit site, per layer, against the efficacy of editing that layer
    localisation_kind: Literal["mlp", "attn", "hidden"] = "hidden"
    localisation_window: int = Field(1, ge=1)
    sweep_edits: int = Field(20, ge=1)  # questions edited at each layer (Fig. 14)
    # whose questions the sweeps edit: the errors (the paper's), or long-tail facts (for a model
    # that makes no errors, such as the compiled control)
    sweep_scenario: Literal["error_correction", "long_tail"] = "error_correction"
    shards: Shards = 1  # jobs per model and scenario
    # MultEdit also run at other settings beside the one that counts, as diagnostics: each
    # variant's edits are recorded as method `multedit@<name>` and summarised, but never enter
    # a claim, a verdict or a validation count (docs/results.md, "Method validation")
    variants: dict[str, dict[str, int | float]] = {}

    @model_validator(mode="after")
    def _variants_are_multedit_settings(self) -> Editing:
        for name, setting in self.variants.items():
            if not name.isidentifier():
                raise ValueError(f"editing.variants: {name!r} is not a name (letters, _, digits)")
            bad = sorted(set(setting) - set(TUNABLE["multedit"]))
            if bad:
                raise ValueError(
                    f"editing.variants.{name}: {bad} are not MultEdit's hyperparameters "
                    f"(allowed: {list(TUNABLE['multedit'])})"
                )
        return self

    def tuned(self, method: str, setting: dict[str, float]) -> Editing:
        """These settings with one grid entry of `method` applied (validated)."""
        bad = sorted(set(setting) - set(TUNABLE[method]))
        if bad:
            raise ValueError(f"{method}: {bad} are not its hyperparameters")
        return Editing(**{**self.model_dump(), **setting})


class Validation(Strict):
    """Method validation on the controls (docs/method.md §4-§7): the pass rules, fixed here
    before any run. A positive control passes a rule when the method finds its known
    mechanism; a negative control *fires* a rule when it passes it although the mechanism is
    absent (a false positive)."""

    # causal tracing, per site kind and window: the argmax (position, layer) of a question's IE
    # lies on the planted route in at least `argmax_share` of the traced questions, the mean IE
    # there is at least `min_ie`, and the mean IE of every cell off the route is at most
    # `max_off_route`
    windows: list[Positive] = Field([1, 3], min_length=1)
    argmax_share: float = Field(0.9, gt=0, le=1)
    min_ie: float = Field(0.5, gt=0, le=1)
    max_off_route: float = Field(0.05, ge=0, le=1)
    # Eq. 1: the planted visual tokens hold at least this share of the layer-0 contribution of
    # the visual tokens to the visual constraint's last token
    planted_share: float = Field(0.9, gt=0, le=1)
    # ablation: knocking out as many top-ranked tokens as there are planted tokens leaves at
    # most `ablated_accuracy`; bottom-ranked knockouts of that size keep at least
    # `kept_accuracy` (random ones are reported: a random set may hold a planted token)
    ablated_accuracy: float = Field(0.1, ge=0, le=1)
    kept_accuracy: float = Field(0.5, ge=0, le=1)
    # MultEdit at the storage layer (long-tail insertion on the positive control): efficacy and
    # generalisation at least these, specificity lost at most `max_specificity_loss`; the layer
    # sweep's best layer is the storage layer
    efficacy: float = Field(0.9, gt=0, le=1)
    generalisation: float = Field(0.9, gt=0, le=1)
    max_specificity_loss: float = Field(0.01, ge=0, le=1)
    # The claim rules on the controls (mmtrace.verdicts.on_controls): per positive control, the
    # verdict its construction fixes for a claim rule (rules not named are reported, not
    # scored); on a negative control no rule may say `supported`.
    expect: dict[str, dict[str, Literal["supported", "not supported", "inconclusive"]]] = {}


class Routes(Strict):
    """Route diagnostics (`mmtrace.transfer.routes`): attention knockouts and linear probes of
    the entity's identity at the constraint and at the last token, on correctly answered
    single-constraint questions."""

    max_questions: Positive = 100  # per split
    folds: int = Field(5, ge=2)  # cross-validation folds of the probes
    ridge: float = Field(10.0, gt=0)  # the probes' ridge penalty
