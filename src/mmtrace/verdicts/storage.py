"""F1 and F2: where the constraint's fact is stored (causal tracing, docs/method.md §4)."""

from __future__ import annotations

from mmtrace.config import Claims
from mmtrace.verdicts import edges
from mmtrace.verdicts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Row, combine
from mmtrace.verdicts.evidence import Evidence, LayerEvidence, band, layer_evidence


def _trace_entries(ev: Evidence, model: str, setting: str, kinds: tuple[str, ...]):
    """(split, kind, window, entry) at the smallest traced window of `setting`."""
    for split, s in sorted(ev.trace.get(model, {}).items()):
        for kind in kinds:
            windows = s.get("traces", {}).get(setting, {}).get(kind, {})
            if windows:
                w = min(windows, key=lambda k: windows[k]["window"])
                yield split, kind, windows[w]["window"], windows[w]


def _fmt_layers(layers: list[int]) -> str:
    return "{" + ",".join(f"l{x}" for x in layers) + "}" if layers else "none"


def _placed(le: LayerEvidence, want: tuple[str, ...], rules: Claims, where: str):
    if le.n < rules.min_traced:
        return INCONCLUSIVE, f"{where}: {le.n} traced < {rules.min_traced}"
    if le.causal is None:
        return INCONCLUSIVE, f"{where}: the trace summary has no per-layer tests"
    if le.peak is None:
        return NOT_SUPPORTED, f"{where}: no layer's IE > 0 after Holm (n={le.n})"
    b = band(le.peak, le.n_layers, rules)
    verdict = SUPPORTED if b in want else NOT_SUPPORTED
    return verdict, f"{where}: peak l{le.peak} ({b}) of causal {_fmt_layers(le.causal)}, n={le.n}"


def rows(ev: Evidence, rules: Claims) -> list[Row]:
    """F1 (MLLM: early MLP and attention at the visual constraint; LLM: middle MLPs) and F2
    (multi-constraint: early and middle layers)."""
    out = []
    early = ("early",)
    specs = [
        (
            "F1",
            "mllm",
            "single",
            ("mlp", "attn"),
            early,
            "early MLP and attention layers store "
            "the single-constraint fact at the visual constraint",
            "layers ~1-4 of 32",
        ),
        (
            "F1-LLM",
            "llm",
            "llm",
            ("mlp",),
            ("middle",),
            "the LLM stores it in middle MLPs",
            "layers ~4-7 of 32 (window 5)",
        ),
    ]
    for claim, role, setting, kinds, want, statement, paper in specs:
        for model in ev.studied(role):
            parts, numbers = [], {}
            for split, kind, w, entry in _trace_entries(ev, model, setting, kinds):
                le = layer_evidence(entry, rules, f"{split}/{kind}/w{w}")
                parts.append(_placed(le, want, rules, f"{split}/{kind}/w{w}"))
                numbers[f"{split}/{kind}/w{w}/peak_layer"] = le.peak
            verdict, reason = combine(parts)
            out.append(
                Row(
                    claim,
                    model,
                    statement,
                    paper,
                    "peak causal layer of mean IE at the constraint, per split and kind",
                    ", ".join(f"{k}={v}" for k, v in numbers.items()) or "n/a",
                    f"the peak layer among Holm-significant (alpha={rules.alpha}) layers "
                    f"is {'/'.join(want)}; n >= {rules.min_traced}",
                    verdict,
                    reason,
                    numbers,
                )
            )
    for model in ev.studied("mllm"):
        parts, numbers = [], {}
        for split, kind, w, entry in _trace_entries(ev, model, "multi", ("mlp", "attn")):
            where = f"{split}/{kind}/w{w}"
            le = layer_evidence(entry, rules, where)
            if le.causal is None:
                parts.append((INCONCLUSIVE, f"{where}: the trace summary has no per-layer tests"))
                continue
            if le.n < rules.min_traced:
                parts.append((INCONCLUSIVE, f"{where}: {le.n} traced < {rules.min_traced}"))
                continue
            bands = {band(x, le.n_layers, rules) for x in le.causal}
            numbers[f"{split}/{kind}/w{w}/n_causal"] = len(le.causal)
            ok = {"early", "middle"} <= bands
            named = ", ".join(sorted(bands)) or "none"
            reason = f"{where}: causal {_fmt_layers(le.causal)} ({named})"
            parts.append((SUPPORTED if ok else NOT_SUPPORTED, reason))
        verdict, reason = combine(parts)
        out.append(
            Row(
                "F2",
                model,
                "multi-constraint questions use early and middle layers",
                "early and middle layers, larger window (6 of 32)",
                "Holm-significant layers at the textual constraint, per split and kind",
                ", ".join(f"{k}={v}" for k, v in numbers.items()) or "n/a",
                "the causal layers include an early and a middle layer",
                verdict,
                reason,
                numbers,
            )
        )
    return out + windows(ev, rules)


def smallest_window(sweep: dict | None, rules: Claims, where: str = "") -> tuple[int | None, str]:
    """The smallest swept window whose restoration at the constraint (mlp) has a causal layer
    recovering at least `window_share` of the corruption's mean drop; None and why otherwise."""
    if not sweep:
        return None, "no window sweep (tracing.window_sweep)"
    if sweep["n"] < rules.min_traced:
        return None, f"{sweep['n']} swept < {rules.min_traced}"
    need = rules.window_share * sweep["mean_drop"]
    for w, e in zip(sweep["windows"], sweep["kinds"]["mlp"], strict=True):
        pairs = zip(e["mean_ie_by_layer"], e["p_holm_ie_positive_by_layer"], strict=True)
        for layer, (m, p) in enumerate(pairs):
            at = f"{where} window {w} l{layer}"
            if (
                edges.below("p_value", f"{at} Holm p", p, rules.alpha)
                and m > 0
                and edges.at_least("ie", f"{at} IE vs {rules.window_share:g} of the drop", m, need)
            ):
                return w, ""
    return None, f"no window up to {sweep['windows'][-1]} restores {need:.3f}"


def _window_rows(ev: Evidence, rules: Claims, claim: str, pairs, statement: str, paper: str):
    """One row per (model, larger setting, smaller setting, partner model): the larger
    setting's smallest window must exceed the smaller's in every split where both were swept."""
    out = []
    for model, big, partner, small in pairs:
        parts, numbers = [], {}
        for split, s in sorted(ev.trace.get(model, {}).items()):
            other = ev.trace.get(partner, {}).get(split, {})
            a_sweep = s.get("window_sweep", {}).get(big)
            b_sweep = other.get("window_sweep", {}).get(small)
            if not a_sweep:
                continue  # e.g. a split without multi-constraint questions
            a, why_a = smallest_window(a_sweep, rules, f"{model} {split}/{big}")
            b, why_b = smallest_window(b_sweep, rules, f"{partner} {split}/{small}")
            numbers[f"{split}/{big}"], numbers[f"{split}/{small}"] = a, b
            if a is None or b is None:
                why = "; ".join(f"{n}: {w}" for n, w in ((big, why_a), (small, why_b)) if w)
                parts.append((INCONCLUSIVE, f"{split}: {why}"))
            else:
                verdict = SUPPORTED if a > b else NOT_SUPPORTED
                parts.append((verdict, f"{split}: {big} {a} vs {small} {b}"))
        verdict, reason = combine(parts)
        out.append(
            Row(
                claim,
                model if partner == model else f"{model} vs {partner}",
                statement,
                paper,
                f"smallest window (mlp, swept 1..L) restoring >= {rules.window_share:g} of the "
                "corruption's drop at a causal layer",
                ", ".join(f"{k}={v}" for k, v in numbers.items()) or "n/a",
                f"{big}'s smallest window > {small}'s, per split",
                verdict,
                reason or "no window sweep (tracing.window_sweep)",
                numbers,
            )
        )
    return out


def windows(ev: Evidence, rules: Claims) -> list[Row]:
    """The windows the claims mention: multi-constraint questions need a larger window than
    single-constraint ones (F2), and the LLM a larger one than its MLLM (F1, window 5 vs 1-3)."""
    mllms, llms = ev.studied("mllm"), ev.studied("llm")
    out = _window_rows(
        ev,
        rules,
        "F2-window",
        [(m, "multi", m, "single") for m in mllms],
        "multi-constraint questions need a larger window",
        "window 6 vs 1-3 of 32",
    )
    return out + _window_rows(
        ev,
        rules,
        "F1-LLM-window",
        [(llm, "llm", m, "single") for llm in llms for m in mllms],
        "the LLM needs a larger window than the MLLM",
        "window 5 (LLM) vs 1-3 (MLLM) of 32",
    )
