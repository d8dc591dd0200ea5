"""Editing figures: Fig. 6 (MultEdit vs baselines) and Fig. 14 (efficacy vs edited layer), drawn
from `results/editing/summary.json` (and the trace summary, for the causal layers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmtrace.report.style import apply_style, empty_figure, format_p, save_figure
from mmtrace.report.tables import EDIT_METHOD_LABELS, EDIT_SCENARIO_LABELS

METHOD_COLOURS = {
    "unedited": "#bbbbbb",
    "multedit": "#c0392b",
    "finetune": "#2c7bb6",
    "finetune_constrained": "#7fb8da",
}
METRIC_LABELS = {
    "efficacy": "efficacy",
    "generalisation": "generalisation",
    "specificity": "specificity",
    "specificity_same_image": "specificity\n(same image)",
}


def fig_methods(summary: dict, model: str, stem) -> list[Path]:
    """Fig. 6: each metric for the unedited model, MultEdit, FT and FT-L, per scenario, with 95%
    CIs; the x labels carry MultEdit-vs-FT p-values (paired Wilcoxon)."""
    apply_style()
    entry = summary[model]
    scenarios = [s for s in EDIT_SCENARIO_LABELS if s in entry["scenarios"]]
    fig = Figure(figsize=(4.6 * len(scenarios), 3.2), layout="constrained")
    axes = fig.subplots(1, len(scenarios), squeeze=False)[0]
    metrics = list(METRIC_LABELS)
    for ax, scenario in zip(axes, scenarios, strict=True):
        e = entry["scenarios"][scenario]
        methods = [m for m in METHOD_COLOURS if m in e]
        width = 0.8 / len(methods)
        for i, method in enumerate(methods):
            means, lo, hi = [], [], []
            for m in metrics:
                st = e[method].get(m, {})
                mean = st.get("mean", np.nan)
                means.append(mean)
                lo.append(mean - st["ci95"][0] if st.get("n") else 0)
                hi.append(st["ci95"][1] - mean if st.get("n") else 0)
            x = np.arange(len(metrics)) + (i - (len(methods) - 1) / 2) * width
            ax.bar(
                x,
                means,
                width,
                yerr=[lo, hi],
                color=METHOD_COLOURS[method],
                label=EDIT_METHOD_LABELS[method],
                capsize=2,
                error_kw={"lw": 0.7},
            )
        tests = e.get("multedit_vs", {}).get("finetune", {})
        labels = [
            METRIC_LABELS[m]
            + (f"\n{format_p(tests[m]['p_value'])}" if "p_value" in tests.get(m, {}) else "")
            for m in metrics
        ]
        ax.set_xticks(range(len(metrics)), labels)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{EDIT_SCENARIO_LABELS[scenario]} (n={e['n']} edits)")
    axes[0].set_ylabel("mean (95% CI)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{model}: MultEdit at layer {entry['layer']} vs fine-tuning (p: MultEdit vs FT)")
    return save_figure(fig, stem)


def causal_layers(trace_summary: dict, model: str) -> dict[str, int]:
    """Per split, the layer of peak mean MLP IE at the visual constraint (single-constraint
    questions, the widest window traced)."""
    out = {}
    for split, entry in trace_summary.get(model, {}).items():
        mlp = entry.get("traces", {}).get("single", {}).get("mlp", {})
        if mlp:
            widest = max(mlp.values(), key=lambda w: w["window"])
            out[split] = widest["peak_layer_at_constraint"]
    return out


def fig_layers(summary: dict, trace_summary: dict, model: str, stem) -> list[Path]:
    """Fig. 14: MultEdit's efficacy and generalisation against the edited layer (95% CIs), the
    causal layers found by tracing marked; and efficacy against the delta clamp."""
    apply_style()
    sweep = summary[model].get("sweep")
    if sweep is None:
        return empty_figure(stem, f"{model}: no layer sweep")
    fig = Figure(figsize=(10, 2.9), layout="constrained")
    ax, cx, sx = fig.subplots(1, 3, width_ratios=[2, 1, 1])
    layers = sorted(sweep["by_layer"], key=int)
    x = np.array([int(v) for v in layers])
    for metric, colour in (("efficacy", "#c0392b"), ("generalisation", "#e67e22")):
        st = [sweep["by_layer"][k][metric] for k in layers]
        mean = np.array([s.get("mean", np.nan) for s in st])
        ci = np.array([s.get("ci95", [np.nan, np.nan]) for s in st])
        ax.plot(x, mean, marker="o", ms=3, color=colour, label=metric)
        ax.fill_between(x, ci[:, 0], ci[:, 1], color=colour, alpha=0.2, lw=0)
    base = np.array([sweep["by_layer"][k]["unedited_efficacy"]["mean"] for k in layers])
    ax.plot(x, base, color="#999999", ls="--", label="unedited p(target)")
    marked = causal_layers(trace_summary, model)
    for i, layer in enumerate(sorted(set(marked.values()))):
        splits = ", ".join(s for s, v in sorted(marked.items()) if v == layer)
        ax.axvline(
            layer,
            color="#2a7a2a",
            lw=0.8,
            ls=":",
            label="causal layer (tracing)" if i == 0 else None,
        )
        ax.text(layer, 1.02, splits, ha="center", va="bottom", fontsize=6, color="#2a7a2a")
    ax.set_xticks(x)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("edited layer")
    ax.set_ylabel("mean p(target) (95% CI)")
    ax.legend(loc="center right")
    ax.set_title(f"layer sweep (n={sweep['n']} error-correction edits)")
    for axis, by, name in (
        (cx, "by_clamp", "clamp (||delta|| / ||v0||)"),
        (sx, "by_steps", "delta steps"),
    ):
        keys = sorted(sweep.get(by, {}), key=float)
        for j, (metric, colour) in enumerate(
            (("p_target_after_delta", "#999999"), ("efficacy", "#c0392b"))
        ):
            st = [sweep[by][c][metric] for c in keys]
            mean = np.array([s.get("mean", np.nan) for s in st])
            err = np.array(
                [[m - s["ci95"][0], s["ci95"][1] - m] for m, s in zip(mean, st, strict=True)]
            ).reshape(-1, 2)
            axis.bar(
                np.arange(len(keys)) + (j - 0.5) * 0.4,
                mean,
                0.4,
                yerr=err.T,
                color=colour,
                capsize=2,
                label="delta alone" if j == 0 else "after the update",
            )
        axis.set_xticks(range(len(keys)), [f"{float(c):g}" for c in keys])
        axis.set_xlabel(name)
        axis.set_ylim(0, 1.05)
        axis.set_title(f"efficacy at layer {sweep['layer']}")
    sx.legend(loc="upper left")
    fig.suptitle(f"{model}: MultEdit efficacy by edited layer, delta clamp and delta steps")
    return save_figure(fig, stem)
