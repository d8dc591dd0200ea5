"""F1 and F2: where the constraint's fact is stored (causal tracing, docs/method.md §4)."""

from __future__ import annotations

from mmtrace.config import Claims
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
                le = layer_evidence(entry, rules)
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
            le = layer_evidence(entry, rules)
            where = f"{split}/{kind}/w{w}"
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


def _smallest_window(
    ev: Evidence, model: str, setting: str, rules: Claims
) -> tuple[int | None, str]:
    """The smallest traced window at which the constraint's IE has a causal layer (mlp), if
    the windows traced start at 1; otherwise why it cannot be told."""
    found = []
    for split, s in sorted(ev.trace.get(model, {}).items()):
        ws = s.get("traces", {}).get(setting, {}).get("mlp", {})
        sizes = sorted(e["window"] for e in ws.values())
        if not sizes:
            continue
        if sizes[0] != 1:
            return None, f"{setting} traced at windows {sizes} only (a sweep from 1 is needed)"
        for size in sizes:
            if layer_evidence(ws[f"window_{size}"], rules).peak is not None:
                found.append(size)
                break
        else:
            return None, f"{setting}/{split}: no window in {sizes} has a causal layer"
    return (max(found), "") if found else (None, f"{setting}: not traced")


def windows(ev: Evidence, rules: Claims) -> list[Row]:
    """F2's "needs a larger window": the smallest window with a causal layer is larger for
    multi-constraint questions than for single-constraint ones."""
    out = []
    for model in ev.studied("mllm"):
        single, why_s = _smallest_window(ev, model, "single", rules)
        multi, why_m = _smallest_window(ev, model, "multi", rules)
        if single is None or multi is None:
            verdict, reason = INCONCLUSIVE, "; ".join(x for x in (why_s, why_m) if x)
        else:
            verdict = SUPPORTED if multi > single else NOT_SUPPORTED
            reason = f"smallest causal window: multi {multi}, single {single}"
        out.append(
            Row(
                "F2-window",
                model,
                "multi-constraint questions need a larger window",
                "window 6 vs 1-3 of 32",
                "smallest window with a causal layer (mlp)",
                f"single={single}, multi={multi}",
                "multi's smallest causal window > single's (windows swept from 1)",
                verdict,
                reason,
                {"single": single, "multi": multi},
            )
        )
    return out
