"""One question's figures: its causal trace, its attention contributions (Eq. 1), its
visual-token ablation and its edit. Each `draw_*` returns a matplotlib Figure (the notebook API's
`.plot()` shows it inline); `plot_*` write it as .png and .pdf (the command line's `--plot`).
Every figure draws a record as `mmtrace.api` and the command line write it as JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mmtrace.report.style import apply_style, save_figure
from mmtrace.report.traces import colour_limit, draw_heatmap, kinds_of, token_label

RANKING_COLOURS = {"top": "#c0392b", "random": "#7f7f7f", "bottom": "#2c7bb6", "mask": "#1b9e77"}
RANKING_LABELS = {
    "top": "top-k (highest contribution)",
    "random": "random k",
    "bottom": "bottom-k",
    "mask": "k most covered by the object (renderer's mask)",
}
WAY_LABELS = {"block": "attention to the tokens blocked", "mean": "embeddings mean-ablated"}


def square_grid(values) -> np.ndarray | None:
    """A per-visual-token vector as its square patch grid (row-major, as CLIP orders patches),
    or None where the tokens form no square grid (e.g. Qwen2-VL's merged patches)."""
    values = np.asarray(values, dtype=float)
    side = int(round(np.sqrt(values.size)))
    return values.reshape(side, side) if values.size and side * side == values.size else None


def patches_over_image(ax, image, values, cmap: str = "magma", colorbar: bool = True) -> None:
    """The visual tokens' values on the patch grid drawn over the image (as the paper's Fig. 5),
    patch borders marked; without an image, the grid alone."""
    grid = square_grid(values)
    if grid is None:
        ax.text(0.5, 0.5, "visual tokens form\nno square grid", ha="center", va="center")
        ax.set_axis_off()
        return
    side = grid.shape[0]
    extent = (0, side, side, 0)
    im = ax.imshow(grid, cmap=cmap, vmin=0, extent=extent)
    if image is not None:  # the image, and each patch's colour over it as opaque as its value
        from matplotlib import colormaps

        ax.imshow(np.asarray(image.convert("RGB")), extent=extent, interpolation="bilinear")
        top = grid.max() if grid.max() > 0 else 1.0
        rgba = colormaps[cmap](grid / top)
        rgba[..., 3] = 0.1 + 0.75 * grid / top
        ax.imshow(rgba, extent=extent)
    for v in range(1, side):
        ax.axhline(v, color="white", lw=0.3, alpha=0.6)
        ax.axvline(v, color="white", lw=0.3, alpha=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def draw_trace(trace: dict) -> Figure:
    """Heatmaps of one traced question, one panel per kind, on one colour scale."""
    kinds = kinds_of(trace)
    n_tok = len(trace["tokens"])
    fig = Figure(figsize=(3.0 * len(kinds), 0.6 + 0.16 * n_tok), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    vmax = colour_limit(*(np.asarray(trace["ie"][k], dtype=float) for k in kinds))
    for i, (ax, kind) in enumerate(zip(axes, kinds, strict=True)):
        draw_heatmap(ax, trace, kind, vmax=vmax, colorbar=i == len(kinds) - 1, tokens=i == 0)
    fig.suptitle(
        f"p_clean={trace['p_clean']:.3f}  p_corr={trace['p_corr']:.3f}  answer {trace['answer']!r}"
    )
    return fig


def draw_contributions(record: dict, image=None) -> Figure:
    """Every token's contribution to the last token per layer (constraint tokens starred), and
    for an MLLM the visual tokens -> constraint on the patch grid, over the image if given."""
    to_last = np.asarray(record["to_last"])  # [layers, seq]
    start = record["image_positions"][-1] + 1 if record["image_positions"] else 0
    constraint = set(record["constraint_positions"])
    labels = [
        token_label(t, "first" if i + start in constraint else "")
        for i, t in enumerate(record["tokens"][start:])
    ]
    visual = "visual_to_constraint" in record
    fig = Figure(figsize=(3.2 + (2.6 if visual else 0), 0.8 + 0.16 * len(labels)))
    axes = fig.subplots(1, 2 if visual else 1, squeeze=False)[0]
    im = axes[0].imshow(to_last[:, start:].T, aspect="auto", cmap="Blues", vmin=0)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].set_xlabel("layer")
    axes[0].set_title("contribution to the last token")
    fig.colorbar(im, ax=axes[0])
    if visual:
        patches_over_image(axes[1], image, record["visual_to_constraint"])
        axes[1].set_title(
            f"visual -> constraint, layer {record['visual_layer']}\n"
            f"top {record['top_share']:.0%} hold {record['concentration']:.3f}"
        )
    fig.suptitle(f"predicted {record['predicted']!r} (p={record['confidence']:.3f})")
    return fig


def draw_ablation(record: dict) -> Figure:
    """One question's knockouts: p(answer) against k per ranking, one panel per way (and the
    per-layer blocking, where run); the clean p(answer) dashed."""
    ways = [w for w in WAY_LABELS if w in record]
    per_layer = "per_layer" in record
    fig = Figure(figsize=(3.0 * (len(ways) + per_layer), 2.8), layout="constrained")
    axes = fig.subplots(1, len(ways) + per_layer, squeeze=False)[0]
    k = np.asarray(record["ks"])
    for ax, way in zip(axes, ways, strict=False):
        for ranking, colour in RANKING_COLOURS.items():
            if ranking in record[way]:
                p = record[way][ranking]["p"]
                ax.plot(k, p, color=colour, marker="o", ms=3, label=RANKING_LABELS[ranking])
        ax.axhline(record["p_clean"], color="#999999", lw=0.8, ls="--", label="no knockout")
        ax.set_xscale("log", base=2)
        ax.set_xticks(k, [str(v) for v in k])
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("k visual tokens knocked out")
        ax.set_title(WAY_LABELS[way])
    axes[0].set_ylabel("p(answer)")
    axes[0].legend(loc="lower left", fontsize=6)
    if per_layer:
        ax = axes[-1]
        layers = np.arange(len(record["per_layer"]["p"]))
        ax.plot(layers, record["per_layer"]["p"], color=RANKING_COLOURS["top"], marker="o", ms=3)
        ax.axhline(record["p_clean"], color="#999999", lw=0.8, ls="--")
        ax.set_xticks(layers)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("layer where every visual token is blocked")
        ax.set_title("one layer blocked")
    fig.suptitle(
        f"answer {record.get('answer', '')!r}: p={record['p_clean']:.3f} without a knockout"
    )
    return fig


def draw_edit(record: dict) -> Figure:
    """An edit: p(target) at each optimisation step, and each metric before and after."""
    fig = Figure(figsize=(6.4, 2.6), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=[1.4, 1])
    steps = record.get("p_target_by_step") or []
    ax.plot(range(len(steps)), steps, color="#c0392b", marker="o", ms=2)
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("p(target) while optimising")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{record['method']} at layer {record['layer']}")
    metrics = [m for m in record["metrics"] if record["metrics"][m]["after"] is not None]
    x = np.arange(len(metrics))
    for shift, when, colour in ((-0.2, "before", "#bbbbbb"), (0.2, "after", "#c0392b")):
        values = [record["metrics"][m][when] for m in metrics]
        bx.bar(x + shift, values, 0.4, color=colour, label=when)
    bx.set_xticks(x, [m.replace("_", "\n") for m in metrics])
    bx.set_ylim(0, 1.05)
    bx.legend(loc="upper left", fontsize=6)
    fig.suptitle(f"target {record['target']!r}")
    return fig


def plot_trace(trace: dict, stem) -> list[Path]:
    """`draw_trace` as .png and .pdf."""
    apply_style()
    return save_figure(draw_trace(trace), stem)


def plot_contributions(record: dict, stem, image=None) -> list[Path]:
    """`draw_contributions` as .png and .pdf."""
    apply_style()
    return save_figure(draw_contributions(record, image), stem)
