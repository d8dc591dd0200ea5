"""Information-transfer figures (Figs. 5, 15-16, 17) and the visual-token ablation curves.

Every figure draws one model's entry of a summary (`results/attention/summary.json` or
`results/ablation/summary.json`), so the numbers in a figure are the numbers in the summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmtrace.config.verdicts import Claims
from mmtrace.report.questions import (
    RANKING_COLOURS,
    RANKING_LABELS,
    WAY_LABELS,
    patches_over_image,
)
from mmtrace.report.significance import ablation_stars, per_layer_stars, separation_marks
from mmtrace.report.style import (
    SPLIT_ORDER,
    apply_style,
    empty_figure,
    format_p,
    save_figure,
    split_label,
)
from mmtrace.toyworld.generate import HARD_SPLIT
from mmtrace.transfer.visual import patch_grid

# the claims' alpha (config claims.alpha; the workflow passes the configured one)
ALPHA = Claims.model_fields["alpha"].default


def _splits(entry: dict, pooled: bool = False) -> list[str]:
    order = [*SPLIT_ORDER, "all"] if pooled else list(SPLIT_ORDER)
    return [s for s in order if s in entry["splits"]]


def _label(split: str) -> str:
    if split == HARD_SPLIT:
        return "hard renderings"
    return "all splits" if split == "all" else split_label(split)


def _correctness_panels(entry: dict) -> tuple[list[str], str]:
    """Figs. 15-17's panels: the split F3b/F4 are judged on first (the hard split where it
    exists, docs/method.md §5), then the analysed splits and their pool; and that split."""
    judged = entry.get("correctness_split", "all")
    rest = [s for s in _splits(entry, pooled=True) if s != judged]
    return [judged, *rest] if judged in entry["splits"] else rest, judged


def _panel_title(split: str, judged: str, n_correct: int, n_incorrect: int) -> str:
    """A panel's split, whether F3b/F4 read it, and its n per class (their power)."""
    mark = " [F3b/F4]" if split == judged else ""
    return f"{_label(split)}{mark}\n{n_correct} correct / {n_incorrect} incorrect"


def fig_visual(summary: dict, model: str, stem, examples: dict | None = None) -> list[Path]:
    """Fig. 5: visual tokens -> visual constraint at the first layer, per split: the mean share
    of each visual token (bars, by index), the same on the patch grid, how often each patch is
    among a question's top tokens, and (with `examples`: split -> (qid, image, contributions))
    one question's contributions on the patch grid drawn over its image, as in the paper;
    concentration and consistency in the titles."""
    apply_style()
    entry = summary[model]
    splits = [s for s in _splits(entry) if entry["splits"][s].get("visual", {}).get("n")]
    if not splits:
        return empty_figure(
            stem,
            f"{model}: no visual-token contributions (text-only model, or none reach "
            "the constraint)",
        )
    examples = {s: e for s, e in (examples or {}).items() if s in splits}
    cols = 3 + bool(examples)
    size = (9.5 + 2.4 * bool(examples), 0.5 + 2.5 * len(splits))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(splits), cols, squeeze=False, width_ratios=[2.2, 1, 1, 1][:cols])
    for row, split in zip(axes, splits, strict=True):
        v = entry["splits"][split]["visual"]
        share = np.asarray(v["mean_share"])
        conc = v["concentration"]
        cons = v.get("consistency")
        row[0].bar(np.arange(share.size), share, color="#34495e", width=0.8)
        row[0].axhline(1 / share.size, color="#999999", lw=0.8, ls="--", label="uniform")
        row[0].set_xlabel("visual token (patch index)")
        row[0].set_ylabel("mean share of contribution")
        row[0].legend(loc="upper left")
        row[0].set_title(
            f"{_label(split)} (n={v['n']}): top {v['top_share']:.0%} (k={v['k']}) hold "
            f"{conc['mean']:.3f} [{conc['ci95'][0]:.3f}, {conc['ci95'][1]:.3f}] "
            f"vs uniform {conc['uniform']:.3f}"
        )
        for ax, values, title, cmap in (
            (row[1], share, "mean share on the patch grid", "magma"),
            (row[2], np.asarray(v["top_frequency"]), "share of questions in top-k", "viridis"),
        ):
            im = ax.imshow(patch_grid(values), cmap=cmap, vmin=0)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(title)
        if cons is not None:
            row[2].set_xlabel(
                f"top-k overlap {cons['overlap']:.3f} vs random "
                f"{cons['baseline_mean']:.3f} ({format_p(cons['p_value'])})"
            )
        if examples:
            ax = row[3]
            if split in examples:
                qid, image, contrib = examples[split]
                patches_over_image(ax, image, contrib)
                ax.set_title(f"one question over its image\n{qid}", fontsize=6)
            else:
                ax.set_axis_off()
    layer = entry["visual_layer"]
    fig.suptitle(f"{model}: visual tokens -> visual-constraint token, layer {layer} (Eq. 1)")
    return save_figure(fig, stem)


def fig_constraint_to_last(summary: dict, model: str, stem, alpha: float = ALPHA) -> list[Path]:
    """Figs. 15-16: contribution of the constraint's tokens to the last token per layer, for
    correct and incorrect answers, with 95% CIs; layers where the groups differ at Holm p <
    `alpha` (Mann-Whitney, Holm over layers: claim F3b's test) are starred, green where correct
    answers' is larger, red where smaller. The panel F3b reads comes first
    (`_correctness_panels`)."""
    apply_style()
    entry = summary[model]
    splits, judged = _correctness_panels(entry)
    fig = Figure(figsize=(2.9 * len(splits), 2.8), layout="constrained")
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    colours = {"correct": "#2a7a2a", "incorrect": "#c0392b"}
    for ax, split in zip(axes, splits, strict=True):
        c = entry["splits"][split]["constraint_to_last"]
        top = 0.0
        for group in ("correct", "incorrect"):
            g = c[group]
            if not g["n"]:
                continue
            mean = np.asarray(g["mean"])
            ci = np.asarray(g["ci95"])
            x = np.arange(mean.size)
            ax.plot(x, mean, color=colours[group], label=f"{group} (n={g['n']})")
            ax.fill_between(x, ci[:, 0], ci[:, 1], color=colours[group], alpha=0.2, lw=0)
            top = max(top, float(ci[:, 1].max()))
        for layer, mark in enumerate(separation_marks(c, alpha)):
            if mark:
                colour = colours["correct" if mark > 0 else "incorrect"]
                ax.text(layer, top * 1.02, "*", ha="center", va="bottom", color=colour)
        ax.set_xlabel("layer")
        ax.set_title(_panel_title(split, judged, c["correct"]["n"], c["incorrect"]["n"]))
        ax.legend(loc="best")
    axes[0].set_ylabel(f"constraint -> last token ({entry['reduce']} over tokens)")
    fig.suptitle(
        f"{model}: attention contribution of the constraint to the last token "
        f"(F3b reads {_label(judged)}; *: Holm p < {alpha:g} over layers)"
    )
    return save_figure(fig, stem)


def fig_failure(summary: dict, model: str, stem) -> list[Path]:
    """Fig. 17: ROC curves on the evaluation half, attention contribution (at the layer chosen
    on the selection half) vs confidence, AUROCs with bootstrap CIs and DeLong's p. The panel
    F4 reads comes first (`_correctness_panels`)."""
    apply_style()
    entry = summary[model]
    splits, judged = _correctness_panels(entry)
    fig = Figure(figsize=(3.0 * len(splits), 3.6), layout="constrained")
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    for ax, split in zip(axes, splits, strict=True):
        f = entry["splits"][split]["failure_prediction"]
        ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("false positive rate")
        if "skipped" in f:
            ax.set_title(_panel_title(split, judged, f["n"] - f["n_incorrect"], f["n_incorrect"]))
            ax.text(0.5, 0.5, "too few incorrect\nanswers to split", ha="center", va="center")
            continue
        for key, colour, name in (
            ("contribution", "#8e44ad", f"contribution, layer {f['layer']}"),
            ("confidence", "#e67e22", "confidence"),
        ):
            r = f[key]
            ax.step(
                r["roc"]["fpr"],
                r["roc"]["tpr"],
                where="post",
                color=colour,
                label=f"{name}: {r['auroc']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]",
            )
        ev = f["evaluation"]
        title = _panel_title(split, judged, ev["n"] - ev["n_incorrect"], ev["n_incorrect"])
        ax.set_title(f"{title} evaluated\nDeLong {format_p(f['difference']['delong_p'])}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), title="AUROC [95% CI]")
    axes[0].set_ylabel("true positive rate (correct answers)")
    fig.suptitle(f"{model}: predicting a correct answer (F4 reads {_label(judged)})")
    return save_figure(fig, stem)


def _per_layer_panel(ax, split_entry: dict, first: bool, alpha: float) -> None:
    """Every visual token blocked in one layer only, from the visual constraint (F3-layer's
    curve, coloured) and from every later token (grey): p(answer) (solid, 95% CI) and accuracy
    (dashed) per layer; layers whose constraint-blocked drop is > 0 at Holm p < `alpha` are
    starred."""
    clean = split_entry[next(w for w in WAY_LABELS if w in split_entry)]["clean"]
    curves = (("per_layer", RANKING_COLOURS["top"], "from the constraint"),
              ("per_layer_all", "#888888", "from every later token"))  # fmt: skip
    for key, colour, label in curves:
        g = split_entry.get(key)
        if g is None:
            continue
        layers = np.arange(len(g["drop_p_answer"]))
        p = clean["p_answer"] - np.asarray(g["drop_p_answer"])
        ci = clean["p_answer"] - np.asarray(g["drop_p_answer_ci95"])
        ax.plot(layers, p, color=colour, marker="o", ms=3, label=label)
        ax.fill_between(layers, ci[:, 1], ci[:, 0], color=colour, alpha=0.2, lw=0)
        ax.plot(layers, clean["accuracy"] - np.asarray(g["drop_accuracy"]), color=colour, ls="--")
        if key == "per_layer":
            for x, star in zip(layers, per_layer_stars(g, alpha), strict=True):
                if star:
                    ax.text(x, 1.02, "*", ha="center", va="bottom")
            ax.set_xticks(layers)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("layer where every visual token is blocked")
    if first:
        ax.set_ylabel("one layer blocked\np(answer) / accuracy (dashed)")
        ax.legend(fontsize="x-small", loc="lower right")


def fig_ablation(summary: dict, model: str, stem, alpha: float = ALPHA) -> list[Path]:
    """Visual-token ablation: p(answer) (solid) and accuracy (dashed) against k for top-k,
    random-k and bottom-k knockouts (and, where the images have masks, the k patches the object
    covers most: F3's content baseline), per way (rows) and split (columns), with 95% CIs; k where
    top-k drops more than random-k at Holm p < `alpha` (one-sided Wilcoxon, Holm over the
    panel's k: the Ablation claim's test) are starred. Last row, where run: every visual token
    blocked in one layer at a time, from the visual constraint (F3-layer) and from every later
    token (where the image's information enters the text at all)."""
    apply_style()
    entry = summary[model]
    splits = [s for s in _splits(entry, pooled=True) if entry["splits"][s]["n"]]
    ways = entry["ways"]
    if not splits:
        return empty_figure(stem, f"{model}: no question was ablated")
    per_layer = all("per_layer" in entry["splits"][s] for s in splits)
    n_rows = len(ways) + int(per_layer)
    fig = Figure(figsize=(2.8 * len(splits), 0.8 + 2.5 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, len(splits), squeeze=False)
    for r, way in enumerate(ways):
        for c, split in enumerate(splits):
            ax = axes[r][c]
            g = entry["splits"][split][way]
            k = np.asarray(g["k"])
            for ranking, colour in RANKING_COLOURS.items():
                if ranking not in g:  # no mask: real images
                    continue
                d = g[ranking]
                p = g["clean"]["p_answer"] - np.asarray(d["drop_p_answer"])
                ci = g["clean"]["p_answer"] - np.asarray(d["drop_p_answer_ci95"])
                ax.plot(k, p, color=colour, marker="o", ms=3, label=RANKING_LABELS[ranking])
                ax.fill_between(k, ci[:, 1], ci[:, 0], color=colour, alpha=0.2, lw=0)
                ax.plot(k, d["accuracy"], color=colour, ls="--", lw=0.9)
            for x, star in zip(k, ablation_stars(g, alpha), strict=True):
                if star:
                    ax.text(x, 1.02, "*", ha="center", va="bottom")
            ax.set_ylim(0, 1.1)
            ax.set_xscale("log", base=2)
            ax.set_xticks(k, [str(v) for v in k])
            ax.set_title(f"{_label(split)} (n={g['n']})")
            if c == 0:
                ax.set_ylabel(f"{WAY_LABELS[way]}\np(answer) / accuracy (dashed)")
            if r == len(ways) - 1:
                ax.set_xlabel("k visual tokens knocked out")
    if per_layer:
        for c, split in enumerate(splits):
            _per_layer_panel(axes[len(ways)][c], entry["splits"][split], c == 0, alpha)
    axes[0][0].legend(loc="lower left")
    layers = entry["block_layers"]
    fig.suptitle(
        f"{model}: visual-token ablation (blocking in layers {layers[0]}-{layers[-1]}; "
        f"means over {entry['mean_images']} images; *: top-k below random-k, Holm p < {alpha:g})"
    )
    return save_figure(fig, stem)


ROUTE_VARIANTS = {
    "clean": "clean",
    "last_token_blocked": "last token\nblocked from image",
    "constraint_blocked": "constraint\nblocked from image",
}
CHANCE = {"shape": 1 / 10, "color": 1 / 10, "background": 1 / 6}


def fig_routes(diag: dict, stem) -> list[Path]:
    """Route diagnostics: accuracy under the two attention knockouts (every layer), and the
    identity probes' accuracy per layer at the constraint's last token and at the last token."""
    apply_style()
    if not diag["n"]:
        return empty_figure(stem, f"{diag['model']}: no correctly answered question to diagnose")
    fig = Figure(figsize=(7.5, 2.6))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    k = diag["knockout"]
    names = list(ROUTE_VARIANTS)
    ax1.bar(range(3), [k[v]["accuracy"] for v in names], color=["#777", "#c0392b", "#2a7a2a"])
    ax1.set_xticks(range(3), [ROUTE_VARIANTS[v] for v in names])
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("accuracy")
    ax1.set_title(f"attention knockouts, every layer (n={diag['n']})")
    probe = diag["probe"]
    if "skipped" in probe:
        ax2.text(0.5, 0.5, probe["skipped"], ha="center", va="center", transform=ax2.transAxes)
    else:
        for role, style in (("constraint_last", "-"), ("last_token", "--")):
            ident = probe[role]["identity"]
            ax2.plot(
                range(len(ident)),
                ident,
                style,
                color="#1b9e77",
                label=f"identity, {role.replace('_', ' ')}",
            )
            for attr, colour in (("shape", "#d95f02"), ("color", "#7570b3")):
                ax2.plot(
                    range(len(ident)),
                    probe[role][attr],
                    style,
                    color=colour,
                    lw=0.8,
                    label=f"{attr}, {role.replace('_', ' ')}",
                )
        for attr, colour in (("shape", "#d95f02"), ("color", "#7570b3")):
            ax2.axhline(CHANCE[attr], color=colour, lw=0.5, ls=":")
        ax2.set_xlabel("layer (residual stream after it)")
        ax2.set_ylabel("probe accuracy (cross-validated)")
        ax2.set_ylim(0, 1.05)
        ax2.legend(fontsize=5, ncol=2)
        ax2.set_title("where the entity is named")
    fig.suptitle(f"{diag['model']}: which route the image takes to the answer")
    fig.tight_layout()
    return save_figure(fig, stem)
