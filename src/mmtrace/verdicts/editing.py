"""F5 and F6: MultEdit against its baselines, and where editing works (docs/method.md §7)."""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.config.analyses import setting_label
from mmtrace.stats import holm
from mmtrace.verdicts import edges
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row
from mmtrace.verdicts.evidence import Evidence, layer_evidence

BASELINES = ("finetune", "finetune_constrained")


def comparison(ev: Evidence, rules: Claims) -> list[Row]:
    """F5: per scenario, on the held-out edits with each method at the setting chosen on the
    tuning split (`config.Tuning`), MultEdit's efficacy beats both fine-tuning baselines (paired
    Wilcoxon, Holm over the two) while it loses at most `max_specificity_drop` of
    specificity."""
    out = []
    for model in ev.studied("mllm"):
        scenarios = ev.editing.get(model, {}).get("scenarios", {})
        for scenario, e in sorted(scenarios.items()):
            if "multedit" not in e:
                continue
            vs = e.get("multedit_vs", {})
            ps = holm([vs.get(b, {}).get("efficacy", {}).get("p_value") for b in BASELINES])
            diffs = [vs.get(b, {}).get("efficacy", {}).get("mean_difference") for b in BASELINES]
            eff = e["multedit"]["efficacy"]["mean"]
            drop = e["unedited"]["specificity"]["mean"] - e["multedit"]["specificity"]["mean"]
            numbers = {"efficacy": eff, "specificity_drop": drop} | {
                f"efficacy_minus_{b}": d for b, d in zip(BASELINES, diffs, strict=True)
            }
            at = f"{model} {scenario}"
            beats = [
                edges.above("edit", f"{at} efficacy - {b}", d, 0.0)
                & edges.below("p_value", f"{at} vs {b} Holm p", p, rules.alpha)
                for b, d, p in zip(BASELINES, diffs, ps, strict=True)
            ]
            specific = edges.at_most(
                "edit", f"{at} specificity drop", drop, rules.max_specificity_drop
            )
            if e["n"] < rules.min_errors:
                verdict = INCONCLUSIVE
                reason = f"{e['n']} edits < {rules.min_errors}"
            else:
                verdict = SUPPORTED if all(beats) and specific else NOT_SUPPORTED
                reason = (
                    "; ".join(
                        f"vs {b}: {d:+.3f} (Holm p={p:.3g})"
                        for b, d, p in zip(BASELINES, diffs, ps, strict=True)
                        if d is not None and p is not None
                    )
                    + f"; specificity drop {drop:+.3f}"
                )
            reason += "; " + _settings_note(e)
            out.append(
                Row(
                    f"F5 ({scenario.replace('_', ' ')})",
                    model,
                    "MultEdit beats fine-tuning and constrained fine-tuning",
                    "efficacy about 0.82 / 0.83, specificity drop about 1.5% (secondary, "
                    "unverified)",
                    "MultEdit efficacy; paired differences to the baselines",
                    f"efficacy {eff:.3f}, specificity drop {drop:+.3f}, n={e['n']}",
                    f"efficacy > each baseline at Holm p < {rules.alpha}; specificity drop <= "
                    f"{rules.max_specificity_drop}; >= {rules.min_errors} edits",
                    verdict,
                    reason,
                    numbers,
                )
            )
    return out


def _settings_note(e: dict) -> str:
    """Which setting each method was compared at, and where it was chosen."""
    tuning = e.get("tuning")
    if not tuning:
        return "every method at its configured setting (no tuning split)"
    chosen = ", ".join(
        f"{b} {setting_label(tuning['chosen'].get(b))}" for b in ("multedit", *BASELINES)
    )
    return f"held-out edits; settings chosen on {tuning['n']} tuning edits: {chosen}"


def _causal_layers(ev: Evidence, model: str, rules: Claims) -> set[int]:
    """MLP layers causal at the visual constraint (single constraint, smallest window) in any
    split: where F1 says the fact is stored."""
    layers: set[int] = set()
    for s in ev.trace.get(model, {}).values():
        ws = s.get("traces", {}).get("single", {}).get("mlp", {})
        if ws:
            smallest = min(ws.values(), key=lambda e: e["window"])
            where = f"{model} single/mlp/w{smallest['window']}"
            layers |= set(layer_evidence(smallest, rules, where).causal or ())
    return layers


def layer_sweep(ev: Evidence, rules: Claims) -> list[Row]:
    """F6: the layer where MultEdit's efficacy peaks (Fig. 14) is a causal layer of the trace."""
    out = []
    for model in ev.studied("mllm"):
        by_layer = ev.editing.get(model, {}).get("sweep", {}).get("by_layer", {})
        causal = _causal_layers(ev, model, rules)
        if not by_layer:
            verdict, reason, value, numbers = INCONCLUSIVE, "no layer sweep", "n/a", {}
        else:
            eff = {int(k): v["efficacy"]["mean"] for k, v in by_layer.items()}
            best = edges.best("edit", f"{model} best edited layer", sorted(eff), eff)
            numbers = {"best_layer": best, "best_efficacy": eff[best]}
            value = f"best l{best} ({eff[best]:.3f}); causal mlp layers {sorted(causal)}"
            if not causal:
                verdict, reason = INCONCLUSIVE, "no causal MLP layer to compare with"
            else:
                verdict = SUPPORTED if best in causal else NOT_SUPPORTED
                reason = f"l{best} {'is' if best in causal else 'is not'} a causal layer"
        out.append(
            Row(
                "F6",
                model,
                "editing the causal layers works best",
                "efficacy peaks at the early causal layers (Fig. 14)",
                "argmax over the swept layers of MultEdit efficacy",
                value,
                "the best layer is a Holm-significant MLP layer of the single-constraint trace",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def localisation(ev: Evidence, rules: Claims) -> list[Row]:
    """F6, per question (Hase et al. 2023): within a layer, questions with a larger tracing
    effect at the edit site are edited better there (mean per-layer Spearman rho > 0, questions
    permuted within layers); the per-question rho over layers is reported beside it."""
    out = []
    for model in ev.studied("mllm"):
        loc = (ev.editing.get(model, {}).get("sweep") or {}).get("localisation")
        if not loc:
            verdict, value, reason, numbers = INCONCLUSIVE, "n/a", "no localisation data", {}
        else:
            n, rho, p = loc["n_questions"], loc["within_layer_rho"], loc["p_within_layer"]
            numbers = {
                "within_layer_rho": rho,
                "per_question_rho": loc["mean_rho"],
                "n_questions": n,
            }
            value = (
                f"within-layer rho {rho:+.3f} (p={p:.3g}), n={n}; per-question rho over layers "
                f"{loc['mean_rho']:+.3f}"
                if rho is not None and loc["mean_rho"] is not None
                else f"no layer where effect and efficacy both vary (n={n})"
            )
            if n < rules.min_localisation or rho is None:
                verdict = INCONCLUSIVE
                reason = (
                    f"{n} questions < {rules.min_localisation}"
                    if n < rules.min_localisation
                    else f"the {loc['kind']} effect or the efficacy is constant in every layer"
                )
            else:
                ok = edges.above("rho", f"{model} within-layer rho", rho, 0.0) & edges.below(
                    "p_value", f"{model} within-layer rho p", p, rules.alpha
                )
                verdict = SUPPORTED if ok else NOT_SUPPORTED
                reason = (
                    f"within-layer rho {'>' if ok else 'not >'} 0 at p < {rules.alpha} "
                    f"(questions permuted within layers, {loc['n_layers_used']} layers); best "
                    f"layers agree for {loc['same_best_layer']:.0%} of the questions"
                )
        out.append(
            Row(
                "F6 (per question)",
                model,
                "where a question's answer is localised is where editing it works (Hase et "
                "al.'s test)",
                "implied by F6; Hase et al. 2023 found no such relation in GPT-J",
                "Spearman rho between the tracing effect at the edit site and MultEdit's "
                "efficacy, across questions within each layer, averaged over layers",
                value,
                f"within-layer rho > 0 at one-sided permutation p < {rules.alpha}; >= "
                f"{rules.min_localisation} questions",
                verdict,
                reason,
                numbers,
            )
        )
    return out


def rows(ev: Evidence, rules: Claims) -> list[Row]:
    return comparison(ev, rules) + layer_sweep(ev, rules) + localisation(ev, rules)
