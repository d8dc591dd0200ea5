"""Editing figures: Fig. 6 (MultEdit vs baselines), Fig. 14 (efficacy vs edited layer) and each
method's efficacy-specificity front on the tuning split, drawn from
`results/editing/summary.json` (and the trace summary, for the causal layers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmtrace.config.verdicts import Claims
from mmtrace.report.significance import edit_stars
from mmtrace.report.style import apply_style, empty_figure, format_p, save_figure
from mmtrace.report.tables import EDIT_METHOD_LABELS, EDIT_SCENARIO_LABELS, setting_label

METHOD_COLOURS = {
    "unedited": "#bbbbbb",
    "multedit": "#c0392b",
    "finetune": "#2c7bb6",
    "finetune_constrained": "#7fb8da",
}
# the claims' alpha (config claims.alpha; the workflow passes the configured one)
ALPHA = Claims.model_fields["alpha"].default
SHORT = {"finetune": "FT", "finetune_constrained": "FT-L"}
METRIC_LABELS = {
    "efficacy": "efficacy",
    "generalisation": "generalisation",
    "generalisation_renderings": "generalisation\n(renderings)",
    "specificity": "specificity",
    "specificity_neighbourhood": "specificity\n(neighbours)",
    "specificity_same_image": "specificity\n(same image)",
}


def fig_methods(summary: dict, model: str, stem, alpha: float = ALPHA) -> list[Path]:
    """Fig. 6: each metric for the unedited model, MultEdit, FT and FT-L, per scenario, with 95%
    CIs. A star over a baseline's efficacy bar: MultEdit's efficacy is above it at Holm p <
    `alpha` (paired Wilcoxon, Holm over the two baselines: claim F5's test); the efficacy label
    carries those Holm-adjusted p-values. The other metrics enter no claim and carry no test."""
    apply_style()
    entry = summary[model]
    scenarios = [s for s in EDIT_SCENARIO_LABELS if s in entry["scenarios"]]
    fig = Figure(figsize=(6.2, 3.0 * len(scenarios)), layout="constrained")
    axes = fig.subplots(len(scenarios), 1, squeeze=False)[:, 0]
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
        stars = edit_stars(e, alpha) if "multedit" in e else {}
        for i, method in enumerate(methods):
            if stars.get(method, (False, None))[0]:
                st = e[method]["efficacy"]
                top = st["ci95"][1] if st.get("n") else st.get("mean", 0)
                x = (i - (len(methods) - 1) / 2) * width
                ax.text(x, top + 0.02, "*", ha="center", va="bottom")
        tested = [f"vs {SHORT[b]} {format_p(p)}" for b, (_s, p) in stars.items() if p is not None]
        labels = [METRIC_LABELS[m] for m in metrics]
        if tested:
            labels[0] += "\n" + "\n".join(tested)
        ax.set_xticks(range(len(metrics)), labels)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{EDIT_SCENARIO_LABELS[scenario]} (n={e['n']} edits)")
    axes[0].set_ylabel("mean (95% CI)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(
        f"{model}: MultEdit at layer {entry['layer']} vs fine-tuning (*: MultEdit's efficacy "
        f"above that baseline's, Holm p < {alpha:g})"
    )
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


def _rho_panel(ax, loc: dict | None) -> None:
    """Per-question rho (tracing effect vs efficacy over layers) as a strip, the mean marked."""
    rhos = [r for r in (loc or {}).get("per_question_rho", []) if r is not None]
    if not rhos:
        ax.text(0.5, 0.5, "no question with\na varying effect", ha="center", va="center")
        ax.set_axis_off()
        return
    jitter = np.linspace(-0.15, 0.15, len(rhos))
    ax.scatter(jitter, rhos, s=8, color="#555555")
    ax.axhline(0, color="#999999", lw=0.5)
    ax.hlines(loc["mean_rho"], -0.3, 0.3, color="#c0392b", lw=1.2, label="mean")
    ax.set_xlim(-0.5, 0.5)
    ax.set_xticks([])
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Spearman rho over layers")
    within = loc.get("within_layer_rho")
    decided = (
        f"within layers: rho {within:+.2f}, {format_p(loc['p_within_layer'])}"
        if within is not None
        else "within layers: n/a"
    )
    ax.set_title(
        f"{loc['kind']} effect vs efficacy, per question\nover layers (descriptive): n="
        f"{loc['n_with_rho']}, {format_p(loc['p_rho_positive'])}\n{decided} (decides)",
        fontsize=6,
    )


def fig_layers(summary: dict, trace_summary: dict, model: str, stem) -> list[Path]:
    """Fig. 14: MultEdit's efficacy and generalisation against the edited layer (95% CIs), the
    causal layers found by tracing marked; beside it, Hase et al.'s test: per question, the
    Spearman rho across layers between the tracing effect at the edit site and the efficacy."""
    apply_style()
    sweep = summary[model].get("sweep")
    if sweep is None:
        return empty_figure(stem, f"{model}: no layer sweep")
    fig = Figure(figsize=(7.5, 2.9), layout="constrained")
    ax, rx = fig.subplots(1, 2, width_ratios=[2.6, 1])
    _rho_panel(rx, sweep.get("localisation"))
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
    ax.set_title(f"layer sweep (n={sweep['n']} edits)")
    fig.suptitle(f"{model}: MultEdit efficacy by edited layer")
    return save_figure(fig, stem)


def fig_fronts(summary: dict, model: str, stem) -> list[Path]:
    """Each method's efficacy against its specificity loss over its own tuning grid (the
    tuning split's means; the chosen setting ringed), and the chosen settings' means on the
    held-out edits (diamonds), which decide F5."""
    apply_style()
    entry = summary[model]
    scenarios = [s for s in EDIT_SCENARIO_LABELS if "tuning" in entry["scenarios"].get(s, {})]
    if not scenarios:
        return empty_figure(stem, f"{model}: no tuning split (editing.tuning is null)")
    fig = Figure(figsize=(4.2 * len(scenarios), 3.4), layout="constrained")
    axes = fig.subplots(1, len(scenarios), squeeze=False)[0]
    for ax, scenario in zip(axes, scenarios, strict=True):
        e = entry["scenarios"][scenario]
        tuning = e["tuning"]
        for method, front in tuning["front"].items():
            colour = METHOD_COLOURS[method]
            pts = front["points"]
            x = [p["specificity_drop"] for p in pts]
            y = [p["efficacy"] for p in pts]
            ax.plot(x, y, marker="o", ms=3, lw=0.8, color=colour, label=EDIT_METHOD_LABELS[method])
            for p in pts:
                ax.annotate(
                    setting_label(p["setting"]),
                    (p["specificity_drop"], p["efficacy"]),
                    fontsize=5,
                    xytext=(3, 2),
                    textcoords="offset points",
                    color=colour,
                )
            c = pts[front["chosen"]]
            ax.scatter(
                [c["specificity_drop"]],
                [c["efficacy"]],
                s=60,
                facecolors="none",
                edgecolors=colour,
                lw=1.0,
            )
            if method in e and "specificity" in e[method]:
                drop = e["unedited"]["specificity"]["mean"] - e[method]["specificity"]["mean"]
                ax.scatter([drop], [e[method]["efficacy"]["mean"]], marker="D", s=30, color=colour)
        ax.axvline(0, color="#999999", lw=0.5)
        ax.set_xlabel("specificity loss (unedited - edited accuracy)")
        ax.set_ylim(-0.02, 1.05)
        ax.set_title(
            f"{EDIT_SCENARIO_LABELS[scenario]}: tuning n={tuning['n']}, held-out n={e['n']}"
        )
    axes[0].set_ylabel("mean efficacy p(target)")
    axes[-1].legend(loc="lower right", fontsize=6)
    fig.suptitle(
        f"{model}: each method's front on the tuning split (o: chosen), held-out at the chosen "
        "setting (filled diamond)",
        fontsize=8,
    )
    return save_figure(fig, stem)
